"""The ONNX Runtime backend: same vectors and scores as torch, int8 close, exports cached safely."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from heed.errors import ModelExportError
from heed.models.encoders import (
    DEFAULT_RUNTIME,
    BiEncoder,
    Reranker,
    load_bi_encoder,
    load_reranker,
)
from heed.models.onnx_models import cached_model, open_session
from heed.settings import ModelRuntime, Settings

SETTINGS = Settings()
ONNX = dataclasses.replace(
    SETTINGS.model_runtime(), backend="onnx", embed_precision="fp32", rerank_precision="fp32"
)
INT8 = dataclasses.replace(ONNX, embed_precision="int8", rerank_precision="int8")
TORCH = dataclasses.replace(ONNX, backend="torch")

TEXTS = [
    "how many people live in berlin",
    "Berlin has about 3.7 million registered inhabitants, the most of any German city.",
    "New York is famous for the Metropolitan Museum of Art and Central Park.",
    "Use del d[key] or d.pop(key) to remove an item from a dict. " * 30,  # past 256 tokens
]
QUERY = "how many people live in berlin"
PASSAGES = [
    "Berlin has about 3.7 million registered inhabitants, the most of any German city.",
    "The population of Berlin grew after reunification; about 3.7 million people live there.",
    "Germany's capital is known for its museums and its nightlife.",
    "Brew green tea with water at about 80 degrees Celsius; boiling water makes it bitter.",
    "Use del d[key] or d.pop(key) to remove an item from a dict.",
]


def test_settings_default_runtime_is_the_loaders_default():
    assert SETTINGS.model_runtime() == DEFAULT_RUNTIME
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # everything below loads without a hub


def test_onnx_bi_encoder_vectors_match_torch():
    torch_vecs = load_bi_encoder(SETTINGS.embed_model, TORCH).encode_passages(TEXTS)
    onnx = load_bi_encoder(SETTINGS.embed_model, ONNX)
    onnx_vecs = onnx.encode_queries(TEXTS)  # queries always run on ONNX Runtime
    int8_vecs = load_bi_encoder(SETTINGS.embed_model, INT8).encode_passages(TEXTS)
    assert onnx_vecs.dtype == np.float32 and onnx_vecs.shape == torch_vecs.shape
    np.testing.assert_allclose(np.linalg.norm(onnx_vecs, axis=1), 1.0, atol=1e-5)
    assert (torch_vecs * onnx_vecs).sum(1).min() > 0.9999
    assert (torch_vecs * int8_vecs).sum(1).min() > 0.98
    assert onnx.max_tokens == 256 and onnx.dim == 384


def test_the_bi_encoder_graph_has_one_fused_attention_node_per_layer():
    import onnx

    from heed.models.encoders import resolve_model
    from heed.models.onnx_models import _export_sentence_transformer

    location = resolve_model(SETTINGS.embed_model)
    path = cached_model(
        "bi", location, ONNX, lambda out: _export_sentence_transformer(location, out)
    )
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert ops.count("Attention") == 6 and ops.count("SkipLayerNormalization") == 12
    assert len(ops) < 100  # the unfused export has ~690 nodes, most of them shape plumbing


def test_an_architecture_the_fusion_was_not_checked_on_keeps_its_graph_as_exported(tmp_path):
    from types import SimpleNamespace

    from heed.models.onnx_models import _fuse_attention

    raw, out = tmp_path / "raw.onnx", tmp_path / "out.onnx"
    raw.write_bytes(b"an mpnet graph")
    mpnet = SimpleNamespace(config=SimpleNamespace(model_type="mpnet"))
    _fuse_attention(raw, out, mpnet)
    assert out.read_bytes() == b"an mpnet graph"


def test_fp32_onnx_embeds_passages_on_torch_and_int8_on_its_own_model():
    onnx = BiEncoder(SETTINGS.embed_model, ONNX)
    assert onnx.model is None
    passages = onnx.encode_passages(TEXTS)
    assert onnx.model is not None  # the faster path for long passages, loaded on first use
    assert (passages * onnx.encode_queries(TEXTS)).sum(1).min() > 0.9999
    int8 = load_bi_encoder(SETTINGS.embed_model, INT8)
    np.testing.assert_allclose(
        int8.encode_passages(TEXTS[:1]), int8.encode_queries(TEXTS[:1]), atol=1e-5
    )
    assert int8.model is None


def test_onnx_reranker_scores_match_torch():
    torch_scores = load_reranker(SETTINGS.rerank_model, TORCH).score(QUERY, PASSAGES)
    onnx_scores = load_reranker(SETTINGS.rerank_model, ONNX).score(QUERY, PASSAGES)
    int8_scores = load_reranker(SETTINGS.rerank_model, INT8).score(QUERY, PASSAGES)
    np.testing.assert_allclose(onnx_scores, torch_scores, atol=1e-3)
    assert list(np.argsort(-int8_scores)[:2]) == list(np.argsort(-torch_scores)[:2])
    assert np.abs(int8_scores - torch_scores).max() < 1.0  # scores span ~20 points


def test_onnx_reranker_keeps_a_torch_model_for_explanations():
    from heed.models.gated_cross_encoder import GatedCrossEncoder

    reranker = Reranker(SETTINGS.rerank_model, dataclasses.replace(ONNX, rerank_max_tokens=64))
    assert reranker._heed is None  # loaded only when asked for
    model = reranker.torch_model()
    assert isinstance(model, GatedCrossEncoder) and model.max_length == 64
    assert reranker.torch_model() is model


def test_rerank_max_tokens_truncates_pairs():
    long = "Berlin is a city. " * 200
    short = Reranker(SETTINGS.rerank_model, dataclasses.replace(TORCH, rerank_max_tokens=64))
    batch = short.torch_model().encode_pairs([QUERY], [long])
    assert batch["input_ids"].shape == (1, 64)


def test_sessions_use_the_configured_threads():
    bi = BiEncoder(SETTINGS.embed_model, dataclasses.replace(ONNX, threads=1))
    options = bi._onnx.session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1


def test_query_tokenizer_gives_the_transformers_tokenizers_ids():
    from .conftest import MINI

    texts = [*TEXTS, "柏林有多少人口", "  padded  ", *MINI.read_text().splitlines()[:40]]
    onnx = BiEncoder(SETTINGS.embed_model, ONNX)._onnx
    assert onnx._tokenizer is None  # queries never load the transformers tokenizer
    fast = onnx._fast.encode_batch(texts)
    slow = onnx.tokenizer(texts, padding=True, truncation=True, max_length=onnx.max_seq_length)
    assert [e.ids for e in fast] == slow["input_ids"]
    assert [e.attention_mask for e in fast] == slow["attention_mask"]
    assert max(len(e.ids) for e in fast) == onnx.max_seq_length  # long texts were truncated


# -- the export cache (a fake exporter: the mechanics, not the model) ------------------------------
class Exports:
    def __init__(self, content: bytes = b"model"):
        self.calls = 0
        self.content = content

    def __call__(self, out: Path) -> None:
        self.calls += 1
        out.write_bytes(self.content)


def runtime_in(tmp_path: Path) -> ModelRuntime:
    return ModelRuntime(backend="onnx", cache_dir=tmp_path / "cache")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def test_export_is_cached_and_reused(tmp_path, model):
    exports = Exports()
    first = cached_model("bi", str(model), runtime_in(tmp_path), exports)
    second = cached_model("bi", str(model), runtime_in(tmp_path), exports)
    assert first == second and exports.calls == 1 and first.read_bytes() == b"model"
    assert sorted(p.name for p in first.parent.iterdir() if not p.name.startswith(".")) == [
        first.name,
        first.name + ".sha256",
    ]
    (model / "config.json").write_text('{"retrained": true}')  # new weights: a new export
    third = cached_model("bi", str(model), runtime_in(tmp_path), exports)
    assert third != first and exports.calls == 2


def test_a_damaged_cached_file_is_exported_again(tmp_path, model):
    exports = Exports()
    path = cached_model("bi", str(model), runtime_in(tmp_path), exports)
    path.write_bytes(b"mod")  # truncated, as by a crash or a full disk
    assert cached_model("bi", str(model), runtime_in(tmp_path), exports) == path
    assert exports.calls == 2 and path.read_bytes() == b"model"
    path.with_name(path.name + ".sha256").unlink()  # digest missing: not trusted either
    cached_model("bi", str(model), runtime_in(tmp_path), exports)
    assert exports.calls == 3


def test_an_unchanged_cached_file_is_not_hashed_again(tmp_path, model, monkeypatch):
    from heed.models import onnx_models

    path = cached_model("bi", str(model), runtime_in(tmp_path), Exports())
    hashed = []
    monkeypatch.setattr(onnx_models, "_sha256", lambda p: hashed.append(p) or "x")
    cached_model("bi", str(model), runtime_in(tmp_path), Exports())
    assert hashed == []  # not modified since its digest: trusted without reading 90 MB
    later = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(later, later))  # modified: hashed again (and here "damaged": re-exported)
    exports = Exports()
    cached_model("bi", str(model), runtime_in(tmp_path), exports)
    assert hashed[0] == path and exports.calls == 1


def test_a_failed_export_leaves_no_file_and_says_so(tmp_path, model):
    def half_then_crash(out: Path) -> None:
        out.write_bytes(b"half a mod")
        raise RuntimeError("exporter crashed")

    with pytest.raises(ModelExportError, match="exporter crashed"):
        cached_model("bi", str(model), runtime_in(tmp_path), half_then_crash)
    assert [p for p in (tmp_path / "cache").iterdir() if p.suffix != ".lock"] == []


def test_an_unloadable_model_file_is_a_clear_error(tmp_path, model):
    path = cached_model("bi", str(model), runtime_in(tmp_path), Exports(b"not onnx"))
    with pytest.raises(ModelExportError, match="delete it to export it again"):
        open_session(path, runtime_in(tmp_path))


def test_int8_is_made_from_the_fp32_export_and_needs_it_only_once(tmp_path, model, monkeypatch):
    import heed.models.onnx_models as onnx_models

    monkeypatch.setattr(onnx_models, "_quantize_int8", lambda fp32, out: out.write_bytes(b"q8"))
    runtime = dataclasses.replace(runtime_in(tmp_path), rerank_precision="int8")
    exports = Exports()
    int8 = cached_model("rerank", str(model), runtime, exports)
    assert int8.name.endswith("-int8.onnx") and int8.read_bytes() == b"q8"
    next(int8.parent.glob("*-fp32.onnx")).unlink()
    assert cached_model("rerank", str(model), runtime, exports) == int8
    assert exports.calls == 1


def test_each_model_has_its_own_precision():
    runtime = ModelRuntime(backend="onnx", embed_precision="bf16", rerank_precision="int8")
    assert runtime.quantized("rerank") and not runtime.quantized("bi")
    assert ModelRuntime(embed_precision="int8").quantized("bi")
