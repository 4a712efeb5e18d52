"""heed's two models on ONNX Runtime: exported from the local weights, cached, checked, reused.

Why not sentence-transformers' ``backend="onnx"``: it needs optimum, whose releases pin an older
transformers than heed runs on. The export here is torch's own (``torch.onnx.export``) from the
same folders the torch backend loads, so there is nothing to download, ever.

The cache (``Settings.model_cache``) holds one file per model, weights fingerprint and variant
(fp32, int8), each with a ``.sha256`` beside it. A file is written to a temporary name and moved
into place, then its digest; a file without a matching digest (a crash mid-write, a damaged disk)
is exported again; a file not modified since its digest was written is not hashed again. An
exclusive lock serialises exports of several processes on one cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from heed.errors import ModelExportError
from heed.models.batching import length_sorted_batches
from heed.settings import ModelRuntime

log = logging.getLogger(__name__)

OPSET = 17
Exporter = Callable[[Path], None]
# Bumped when an export's graph changes for the same weights, so caches export again: the
# bi-encoder's graph became fused attention in layout 2.
LAYOUT = {"bi": 2, "rerank": 1}
# Encoders whose attention ONNX Runtime's "bert" fusion is checked on (all-MiniLM, m3e-small).
FUSABLE = {"bert"}


def available_cores() -> int:
    """Cores this process may use (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def open_session(path: Path, runtime: ModelRuntime) -> Any:
    """An ONNX Runtime session sized to the cores: one pool of intra-op threads, no inter-op pool.

    Spinning is off for the same reason heed sets ``OMP_WAIT_POLICY=PASSIVE``: busy-waiting
    threads starve FAISS, the other model and concurrent requests on a small machine.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = runtime.threads or available_cores()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[runtime.optimization]
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelExportError(
            f"cannot load the ONNX model {path}: {exc}; delete it to export it again"
        ) from None


# -- the cache ------------------------------------------------------------------------------------
def cached_model(kind: str, location: str, runtime: ModelRuntime, export: Exporter) -> Path:
    """The ONNX file for ``location`` in the runtime's variant; exported, quantised if need be."""
    folder = Path(location)
    layout = LAYOUT.get(kind, 1)
    stem = f"{kind}-{folder.name}-{_fingerprint(folder)}" + (f"-l{layout}" if layout > 1 else "")
    cache = runtime.cache_dir.expanduser()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelExportError(f"cannot create the model cache {cache}: {exc}") from None
    fp32 = cache / f"{stem}-fp32.onnx"
    with _exclusive(cache / ".export.lock"):
        if not runtime.quantized(kind):
            _ensure(fp32, export)
            return fp32
        int8 = cache / f"{stem}-int8.onnx"

        def quantized(out: Path) -> None:
            _ensure(fp32, export)
            _quantize_int8(fp32, out)

        _ensure(int8, quantized)  # a valid int8 file needs no fp32 beside it (a slimmer image)
        return int8


def _fingerprint(folder: Path) -> str:
    """Changes whenever a file of the model folder does (retrained weights, a new head)."""
    digest = hashlib.sha256(str(folder.resolve()).encode())
    if folder.is_dir():
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            st = f.stat()
            digest.update(f"{f.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _ensure(path: Path, make: Exporter) -> None:
    """``path`` exists and matches its digest file, or is (re-)made by ``make``.

    The digest is written after the file is in place, so a file not modified since (its mtime
    not after the digest file's) is trusted without being read again: hashing the 90 MB
    bi-encoder took a quarter of a cold ``heed search``. A file written or damaged after its
    digest is hashed, and exported again unless it still matches.
    """
    digest_file = path.with_name(path.name + ".sha256")
    if path.is_file():
        if digest_file.is_file() and path.stat().st_mtime_ns <= digest_file.stat().st_mtime_ns:
            return
        expected = digest_file.read_text().strip() if digest_file.is_file() else None
        if expected == _sha256(path):
            _write_atomic(digest_file, expected + "\n")  # newer than the file: trusted next time
            return
        log.warning("cached model %s is incomplete or damaged; exporting it again", path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.onnx")
    log.info("exporting %s (once per model and variant)", path.name)
    try:
        make(tmp)
        digest = _sha256(tmp)
        os.replace(tmp, path)
        _write_atomic(digest_file, digest + "\n")
    except ModelExportError:
        raise
    except Exception as exc:
        raise ModelExportError(f"cannot export {path.name} to {path.parent}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _quantize_int8(fp32: Path, out: Path) -> None:
    """Dynamic int8: weights stored as int8, activations quantised per batch at run time."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _onnxruntime_quiet():
        quantize_dynamic(
            fp32,
            out,
            weight_type=QuantType.QInt8,
            per_channel=True,
            # ONNX's shape inference cannot type the outputs of fused (contrib) nodes.
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )


class _NotOnnxRuntime(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return f"{os.sep}onnxruntime{os.sep}" not in record.pathname


@contextlib.contextmanager
def _onnxruntime_quiet() -> Iterator[None]:
    """ONNX Runtime's quantiser logs advice on the root logger and its optimiser progress on
    loggers of its own, which reach the root's handlers: the filter sits on both, so neither
    shows in heed's output (a logger's own filter never sees records its children pass up)."""
    quiet = _NotOnnxRuntime()
    root = logging.getLogger()
    targets: list[logging.Filterer] = [root, *root.handlers]
    for target in targets:
        target.addFilter(quiet)
    try:
        yield
    finally:
        for target in targets:
            target.removeFilter(quiet)


# -- export ---------------------------------------------------------------------------------------
def _export(module: Any, example: dict[str, Any], output: str, out: Path) -> None:
    """Trace ``module`` (keyword inputs in ``example``) to ONNX, batch and length dynamic."""
    import torch

    names = list(example)
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "tokens"} for n in names}
    axes[output] = {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter; the tests check results
        torch.onnx.export(
            module.eval(),
            tuple(example.values()),
            str(out),
            input_names=names,
            output_names=[output],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,  # the tracing exporter: no onnxscript rewrite of BERT's attention
        )


def _export_sentence_transformer(location: str, out: Path, fused: bool = True) -> None:
    """The whole sentence-transformers pipeline (transformer, pooling, normalise) as one graph,
    with each layer's attention fused into one ONNX Runtime ``Attention`` node where it can be.

    Fused, the graph has 65 nodes instead of 691: a query of ~9 tokens is bound by per-node
    overhead and weight reads, and embeds 1.14x faster, passages 1.2x (``bench.onnx_fusion``;
    same vectors to 1e-7). The fusion recognises the eager attention graph, not SDPA's, hence
    the eager export; ``fused=False`` is the graph as heed exported it before (the bench's
    baseline).
    """
    import torch
    from sentence_transformers import SentenceTransformer

    eager = {"attn_implementation": "eager"} if fused else {}
    try:
        model = SentenceTransformer(location, device="cpu", model_kwargs=eager)
    except (TypeError, ValueError):  # a model whose modules take no such argument
        model = SentenceTransformer(location, device="cpu")

    class Embed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            features = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": torch.zeros_like(input_ids),
            }
            return self.model(features)["sentence_embedding"]

    tok = model.tokenizer(
        ["a query", "a somewhat longer passage"], padding=True, return_tensors="pt"
    )
    example = {"input_ids": tok["input_ids"], "attention_mask": tok["attention_mask"]}
    if not fused:
        _export(Embed(), example, "embedding", out)
        return
    raw = out.with_name(out.stem + ".unfused.onnx")
    try:
        _export(Embed(), example, "embedding", raw)
        _fuse_attention(raw, out, getattr(model[0], "auto_model", None))
    finally:
        raw.unlink(missing_ok=True)


def _fuse_attention(raw: Path, out: Path, transformer: Any) -> None:
    """ONNX Runtime's transformer optimiser on a BERT-like export (attention, skip layer norm,
    bias GELU) into ``out``; where not every layer's attention fuses (another architecture),
    ``raw`` itself is moved there: a partly fused graph would be a new, untested computation."""
    config: Any = getattr(transformer, "config", None)
    if getattr(config, "model_type", None) not in FUSABLE:
        os.replace(raw, out)
        return
    from onnxruntime.transformers.optimizer import optimize_model

    with _onnxruntime_quiet():  # the optimiser, its statistics and its save all log
        fused = optimize_model(
            str(raw),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            opt_level=0,
        )
        if fused.get_fused_operator_statistics().get("Attention") == config.num_hidden_layers:
            fused.save_model_to_file(str(out))
            return
    log.info("attention did not fuse in %s; keeping the graph as exported", raw.name)
    os.replace(raw, out)


def _export_gated_cross_encoder(location: str, out: Path) -> None:
    import torch

    from heed.models.gated_cross_encoder import GatedCrossEncoder

    model = GatedCrossEncoder.load(Path(location))

    class Score(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, position_ids: Any, segments: Any) -> Any:
            batch = {"input_ids": input_ids, "position_ids": position_ids, "segments": segments}
            return self.model(batch)

    example = model.encode_pairs(["a query"] * 2, ["a passage", "a somewhat longer passage"])
    _export(Score(), example, "score", out)


# -- the models -----------------------------------------------------------------------------------
class OnnxSentenceEncoder:
    """A sentence-transformers bi-encoder on ONNX Runtime: normalised float32 rows, like torch's."""

    def __init__(self, location: str, runtime: ModelRuntime):
        self.location = location
        self._tokenizer: Any = None
        self.max_seq_length = _max_seq_length(Path(location), lambda: self.tokenizer)
        self._fast = _fast_tokenizer(Path(location), self.max_seq_length)
        path = cached_model(
            "bi", location, runtime, lambda out: _export_sentence_transformer(location, out)
        )
        self.session = open_session(path, runtime)
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    @property
    def tokenizer(self) -> Any:
        """The transformers tokenizer (the chunker needs its API); loaded on first use, because
        importing transformers costs more than a whole query-only ``heed search`` may."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.location)
        return self._tokenizer

    def token_ends(self, text: str) -> list[int] | None:
        """Where each token of ``text`` ends (no special tokens), counted up to the model's
        window; None without a fast tokenizer (then ask :attr:`tokenizer`)."""
        if self._fast is None:
            return None
        return [end for _, end in self._fast.encode(text, add_special_tokens=False).offsets]

    def encode(self, texts: Sequence[str], batch_size: int) -> NDArray[np.float32]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx in length_sorted_batches(texts, batch_size):
            batch = [texts[i].strip() for i in idx]  # as sentence-transformers does
            if self._fast is not None:
                encodings = self._fast.encode_batch(batch)
                ids = np.array([e.ids for e in encodings], dtype=np.int64)
                mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            else:
                tok = self.tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=self.max_seq_length,
                    return_tensors="np",
                )
                ids, mask = (
                    tok["input_ids"].astype(np.int64),
                    tok["attention_mask"].astype(np.int64),
                )
            out[idx] = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out


def _fast_tokenizer(folder: Path, max_length: int) -> Any:
    """The folder's ``tokenizer.json`` through the tokenizers library (what transformers' fast
    tokenizer wraps; the same ids, tested), padding and truncating as the encoder's calls do;
    None when the folder has no such file or no known padding token."""
    path, config = folder / "tokenizer.json", folder / "tokenizer_config.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    pad = json.loads(config.read_text()).get("pad_token") if config.is_file() else None
    pad_id = tokenizer.token_to_id(pad) if isinstance(pad, str) else None
    if pad_id is None:
        return None
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad)
    return tokenizer


class OnnxGatedCrossEncoder:
    """heed's gated cross-encoder on ONNX Runtime; same inputs and scores as the torch model."""

    def __init__(self, location: str, runtime: ModelRuntime, max_length: int | None = None):
        from transformers import AutoTokenizer

        from heed.models.gated_cross_encoder import HEAD_FILE

        self.tokenizer = AutoTokenizer.from_pretrained(location)
        head = json.loads((Path(location) / HEAD_FILE).read_text())
        self.max_length = max_length or int(head.get("max_length", 256))
        path = cached_model(
            "rerank", location, runtime, lambda out: _export_gated_cross_encoder(location, out)
        )
        self.session = open_session(path, runtime)

    def score(
        self, query: str | Sequence[str], passages: Sequence[str], batch_size: int = 32
    ) -> NDArray[np.float32]:
        from heed.models.gated_cross_encoder import score_pairs

        def run(batch: dict[str, Any]) -> NDArray[np.float32]:
            out = self.session.run(None, {k: v.numpy() for k, v in batch.items()})[0]
            return cast(NDArray[np.float32], out)

        return score_pairs(run, self.tokenizer, query, passages, self.max_length, batch_size)


def _max_seq_length(folder: Path, tokenizer: Callable[[], Any]) -> int:
    """sentence-transformers' own setting when the folder has one, else the tokenizer's limit."""
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        value = json.loads(config.read_text()).get("max_seq_length")
        if value:
            return int(value)
    return int(min(tokenizer().model_max_length, 512))
