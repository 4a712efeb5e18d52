"""Precision per model: the CPU's units read at run time, ``auto`` falling back cleanly, and every
path giving vectors and scores close to fp32.

The detector's input is faked (cpuinfo text of machines we do not have: Sapphire Rapids, an
AVX2-only Xeon, ARM with and without dot products, no /proc at all); the models are real.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
from pydantic import ValidationError

from heed.models import precision
from heed.models.encoders import BiEncoder, Reranker
from heed.models.precision import CpuFeatures, choose, describe_paths, detect
from heed.settings import ModelRuntime, Settings

SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse2 avx2 avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""
ZEN4 = "processor : 0\nflags : fpu sse2 avx2 avx512f avx512_vnni avx512_bf16\n"
HASWELL = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd aes crc32 atomics asimddp sve bf16 i8mm\n"
OLD_ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32\n"


def cpu(text: str, machine: str = "x86_64") -> CpuFeatures:
    return CpuFeatures.parse(text, machine)


def test_amx_cpu_gets_bf16_passages_and_int8_reranking_on_its_amx_units():
    amx = cpu(SAPPHIRE_RAPIDS)
    assert amx.amx and amx.arch == "x86"
    assert choose("bi", "auto", amx) == precision.Choice(
        "bf16", "auto: amx_bf16 present and bf16 keeps nDCG@10"
    )
    assert choose("rerank", "auto", amx).precision == "int8"
    assert "amx_int8" in choose("rerank", "auto", amx).reason


def test_avx512_bf16_without_amx_is_used_too():
    zen4 = cpu(ZEN4)
    assert not zen4.amx
    assert "avx512_bf16" in choose("bi", "auto", zen4).reason
    assert "avx512_vnni" in choose("rerank", "auto", zen4).reason


@pytest.mark.parametrize(
    ("text", "machine"),
    [(HASWELL, "x86_64"), (OLD_ARM, "aarch64"), ("", "x86_64"), ("", "")],
    ids=["avx2-only", "arm-without-dot-products", "no-cpuinfo", "unknown-machine"],
)
def test_auto_falls_back_to_fp32_without_the_units(text, machine):
    features = cpu(text, machine)
    for kind in ("bi", "rerank"):
        choice = choose(kind, "auto", features)
        assert choice.precision == "fp32"
        assert choice.reason.startswith("auto: no ")


def test_arm_gets_int8_on_dot_products_but_not_bf16():
    graviton = cpu(GRAVITON3, "aarch64")
    assert graviton.arch == "arm"
    assert choose("bi", "auto", graviton).precision == "fp32"  # bf16 not measured on ARM
    assert (
        choose("rerank", "auto", graviton).reason == "auto: asimddp present and int8 keeps nDCG@10"
    )


def test_a_torch_backend_reranker_stays_fp32_under_auto():
    choice = choose("rerank", "auto", cpu(ZEN4), backend="torch")
    assert choice.precision == "fp32" and "ONNX Runtime only" in choice.reason
    assert choose("bi", "auto", cpu(ZEN4), backend="torch").precision == "bf16"
    assert Settings(backend="torch").model_runtime().rerank_precision == "fp32"


def test_an_explicit_precision_is_kept_and_says_when_it_is_emulated():
    assert choose("bi", "fp32", cpu(SAPPHIRE_RAPIDS)).precision == "fp32"
    slow = choose("bi", "bf16", cpu(HASWELL))
    assert slow.precision == "bf16"
    assert "HEED_EMBED_PRECISION=bf16" in slow.reason and "emulated" in slow.reason


def test_an_unreadable_cpuinfo_means_no_flags(monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "CPUINFO", tmp_path / "missing")
    detect.cache_clear()
    try:
        assert detect().flags == frozenset()
    finally:
        detect.cache_clear()


def test_settings_accept_the_precisions_and_name_a_bad_one(monkeypatch):
    settings = Settings(embed_precision="fp32", rerank_precision="bf16")
    runtime = settings.model_runtime()
    assert (runtime.embed_precision, runtime.rerank_precision) == ("fp32", "bf16")
    monkeypatch.setenv("HEED_RERANK_PRECISION", "fp16")
    with pytest.raises(ValidationError, match="rerank_precision"):
        Settings()


def test_auto_resolves_to_a_concrete_precision_on_this_machine():
    runtime = Settings().model_runtime()
    assert runtime.embed_precision in ("fp32", "bf16", "int8")
    assert runtime == ModelRuntime()  # the loaders' default is the settings' default


def test_check_and_startup_lines_say_which_path_runs_and_why():
    lines = describe_paths(Settings(), cpu(ZEN4))
    assert lines[0] == (
        "bi-encoder: passages bf16 on torch, queries fp32 on ONNX Runtime "
        "(auto: avx512_bf16 present and bf16 keeps nDCG@10)"
    )
    assert lines[1].startswith("re-ranker: int8 on ONNX Runtime (auto: avx512_vnni")
    assert describe_paths(Settings(), cpu(HASWELL))[1].startswith("re-ranker: fp32 on ONNX")


def test_serve_logs_which_path_runs_at_start(settings, caplog):
    from service.engine import Engine

    caplog.set_level(logging.INFO, logger="service.engine")
    Engine(settings).load_models()
    logged = [r.getMessage() for r in caplog.records if r.name == "service.engine"]
    assert logged[:2] == [f"inference {line}" for line in describe_paths(settings)[:2]]


# -- the paths, on the real models ----------------------------------------------------------------
TEXTS = [
    "how do I read a csv file",
    "The csv module implements classes to read and write tabular data in CSV format.",
    "json.dumps serializes obj to a JSON formatted str; json.loads parses one back. " * 12,
]
PASSAGES = [
    "csv.reader returns a reader object which will iterate over lines in the given csvfile.",
    "The json module exposes an API familiar to users of the standard library marshal module.",
    "shutil.copytree recursively copies an entire directory tree rooted at src.",
    "Brew green tea with water at about 80 degrees Celsius; boiling water makes it bitter.",
]
FP32 = ModelRuntime(backend="torch", embed_precision="fp32", rerank_precision="fp32")


def runtimes() -> dict[str, ModelRuntime]:
    return {
        "torch bf16": dataclasses.replace(FP32, embed_precision="bf16", rerank_precision="bf16"),
        "torch int8": dataclasses.replace(FP32, embed_precision="int8", rerank_precision="int8"),
        "onnx int8": dataclasses.replace(
            FP32, backend="onnx", embed_precision="int8", rerank_precision="int8"
        ),
    }


# torch's dynamic int8 quantises each activation tensor with one scale; MiniLM's outliers cost
# it more than ONNX Runtime's (bench/results/inference_precision.json)
MIN_COSINE = {"torch bf16": 0.999, "torch int8": 0.97, "onnx int8": 0.99}


def test_every_precision_embeds_close_to_fp32():
    name = Settings().embed_model
    reference = BiEncoder(name, FP32).encode_passages(TEXTS)
    for label, runtime in runtimes().items():
        vecs = BiEncoder(name, runtime).encode_passages(TEXTS)
        assert vecs.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
        assert (vecs * reference).sum(1).min() >= MIN_COSINE[label], label


def test_bf16_passages_run_on_bf16_weights_without_an_fp32_torch_copy_on_onnx():
    import torch

    runtime = dataclasses.replace(FP32, backend="onnx", embed_precision="bf16")
    encoder = BiEncoder(Settings().embed_model, runtime)
    encoder.encode_passages(TEXTS[:2])
    # the casts of torch.autocast cost more than the bf16 matmuls save; bf16 weights do not cast
    assert {p.dtype for p in encoder._bf16.parameters()} == {torch.bfloat16}
    assert encoder.model is None  # queries embed on ONNX Runtime: no fp32 torch model is kept


def test_every_precision_reranks_like_fp32():
    name = Settings().rerank_model
    reference = Reranker(name, FP32).score(TEXTS[0], PASSAGES)
    for label, runtime in runtimes().items():
        scores = Reranker(name, runtime).score(TEXTS[0], PASSAGES)
        assert scores.dtype == np.float32
        assert np.argsort(-scores)[0] == np.argsort(-reference)[0] == 0, label
        assert np.abs(scores - reference).max() < 1.0, label  # scores span ~20 points
