"""Which numeric precision each model runs in: the CPU's matrix units, read at run time.

``HEED_EMBED_PRECISION`` and ``HEED_RERANK_PRECISION`` take ``auto`` (default), ``fp32``, ``bf16``
or ``int8``. ``auto`` picks a faster precision only where the CPU has the units that make it fast
and exact enough, and only where ``heed eval`` showed it keeps nDCG@10 (README, "Precision"):

- bf16 needs bf16 dot products: AMX (``amx_bf16``) or AVX-512 BF16 (``avx512_bf16``). oneDNN runs
  torch's bf16 matmuls on them; without them bf16 is emulated, slower than fp32.
- int8 needs int8 dot products: AMX (``amx_int8``), AVX-512 VNNI or AVX-VNNI on x86, ``asimddp`` on
  ARM. ONNX Runtime's dynamic u8s8 int8 without VNNI uses ``vpmaddubsw``, whose 16-bit sums can
  saturate (ONNX Runtime's quantization docs), so auto does not pick int8 there.

Flags come from ``/proc/cpuinfo`` (a Docker container sees its host's); where it cannot be read
(macOS, a locked-down sandbox) no flag is known and ``auto`` means fp32 everywhere.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import platform
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from heed.settings import Precision, Resolved, Settings

Kind = Literal["bi", "rerank"]

CPUINFO = Path("/proc/cpuinfo")
X86 = {"x86_64", "amd64", "i386", "i686"}
BF16_UNITS = ("amx_bf16", "avx512_bf16")  # best first
INT8_UNITS = {"x86": ("amx_int8", "avx512_vnni", "avx_vnni"), "arm": ("asimddp",)}
SETTING = {"bi": "HEED_EMBED_PRECISION", "rerank": "HEED_RERANK_PRECISION"}
# What ``auto`` picks for each model, given the units; measured on Cranfield (README, "Precision").
AUTO: dict[Kind, tuple[Resolved, ...]] = {"bi": ("bf16",), "rerank": ("int8",)}


@dataclass(frozen=True)
class CpuFeatures:
    """The machine's architecture and the CPU flags the kernel reports."""

    machine: str
    flags: frozenset[str]
    source: str = str(CPUINFO)

    @classmethod
    def parse(cls, cpuinfo: str, machine: str, source: str = str(CPUINFO)) -> CpuFeatures:
        """Flags of the first processor listed (x86 ``flags``, ARM ``Features``)."""
        for line in cpuinfo.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() in ("flags", "Features"):
                return cls(machine.lower(), frozenset(value.split()), source)
        return cls(machine.lower(), frozenset(), source)

    @property
    def arch(self) -> str:
        if self.machine in X86:
            return "x86"
        if self.machine in ("aarch64", "arm64"):
            return "arm"
        return self.machine or "unknown"

    @property
    def amx(self) -> bool:
        return "amx_tile" in self.flags and bool(self.flags & {"amx_bf16", "amx_int8"})

    def units(self, precision: Resolved) -> str | None:
        """The flag of the best unit for ``precision`` (None: fp32, or no such unit)."""
        if precision == "bf16" and self.arch == "x86":
            names: tuple[str, ...] = BF16_UNITS
        elif precision == "int8":
            names = INT8_UNITS.get(self.arch, ())
        else:
            return None
        if any(n.startswith("amx") for n in names) and "amx_tile" not in self.flags:
            names = tuple(n for n in names if not n.startswith("amx"))
        return next((n for n in names if n in self.flags), None)

    def describe(self) -> str:
        wanted = [*BF16_UNITS, *INT8_UNITS["x86"], *INT8_UNITS["arm"], "amx_tile", "avx512f"]
        present = [f for f in wanted if f in self.flags]
        return f"{self.arch}, " + (" ".join(present) or f"no bf16/int8 units in {self.source}")


@functools.cache
def detect() -> CpuFeatures:
    """This machine's features, read once per process."""
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        text = ""
    return CpuFeatures.parse(text, platform.machine())


@dataclass(frozen=True)
class Choice:
    """The precision a model runs in, and why (for ``heed check`` and the startup log)."""

    precision: Resolved
    reason: str


def choose(kind: Kind, setting: Precision, cpu: CpuFeatures, backend: str = "onnx") -> Choice:
    """``setting`` resolved for this CPU; an explicit precision is kept, with a note if slow.

    The re-ranker's int8 passed the quality rule on ONNX Runtime only (torch's dynamic int8 is
    further from fp32), so ``auto`` keeps a torch-backend re-ranker in fp32.
    """
    if setting != "auto":
        unit = cpu.units(setting)
        if setting == "fp32" or unit:
            why = f"on {unit}" if unit else "the reference precision"
            return Choice(setting, f"{SETTING[kind]}={setting} ({why})")
        effect = {
            "bf16": "bf16 is emulated, likely slower than fp32",
            "int8": "int8 runs without dot products, may saturate and be slow",
        }[setting]
        return Choice(
            setting,
            f"{SETTING[kind]}={setting}, but this CPU has no {setting} units "
            f"({cpu.describe()}): {effect}",
        )
    if kind == "rerank" and backend != "onnx":
        return Choice("fp32", "auto: int8 is measured on ONNX Runtime only (HEED_BACKEND=torch)")
    for precision in AUTO[kind]:
        if unit := cpu.units(precision):
            return Choice(precision, f"auto: {unit} present and {precision} keeps nDCG@10")
    wanted = " or ".join(
        u for p in AUTO[kind] for u in (BF16_UNITS if p == "bf16" else INT8_UNITS["x86"])
    )
    return Choice("fp32", f"auto: no {wanted} on this CPU ({cpu.describe()})")


def torch_capability() -> str | None:
    """What ATen's own dispatch found (``AVX512``, ``AVX2``, ``DEFAULT``...), if torch is loaded.

    Not imported for it: a keyword-only search never loads torch.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return None


def autocast(precision: Resolved) -> AbstractContextManager[Any]:
    """bf16 for the re-ranker on torch: ``torch.autocast`` on the CPU, so oneDNN runs Linear
    layers and attention matmuls in bf16 (LayerNorm, softmax and pooling stay fp32; the gated
    model's masks are built for its dtype); a no-op for the other precisions."""
    if precision != "bf16":
        return contextlib.nullcontext()
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16)


def bf16_model(module: Any, copy_first: bool = True) -> Any:
    """The module with bf16 weights, for the bf16 passage path: oneDNN's bf16 matmuls read them as
    they are. Under ``torch.autocast`` instead, every Linear casts its input and weights and every
    LayerNorm casts back: those copies were 27% of the CPU time (torch profiler, 64 passages), and
    bf16 weights embed 1.4x faster than autocast, at cosine >= 0.9999 to fp32. Kernels still
    accumulate in fp32; ``copy_first=False`` converts in place (a model loaded for this alone)."""
    import torch

    model = copy.deepcopy(module) if copy_first else module
    return model.to(torch.bfloat16).eval()


def int8_copy(module: Any) -> Any:
    """A copy of a torch module whose ``nn.Linear`` layers are dynamically quantised to int8:
    weights int8 per output channel, activations quantised per batch (fbgemm on x86, VNNI where
    present; qnnpack on ARM). The original stays fp32 (explanations need its gradients)."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    engines = torch.backends.quantized.supported_engines
    engine = "fbgemm" if "fbgemm" in engines else "qnnpack"
    if engine in engines and torch.backends.quantized.engine != engine:
        torch.backends.quantized.engine = engine
    spec = {torch.nn.Linear: per_channel_dynamic_qconfig}
    return quantize_dynamic(  # type: ignore[no-untyped-call]
        copy.deepcopy(module).eval(), spec, dtype=torch.qint8
    )


def describe_paths(settings: Settings, cpu: CpuFeatures | None = None) -> list[str]:
    """One line per model: the precision and runtime each part runs on, and why (for the
    startup log and ``heed check``)."""
    cpu = cpu or detect()
    onnx = settings.backend == "onnx"
    engine = "ONNX Runtime" if onnx else "torch"
    bi = choose("bi", settings.embed_precision, cpu, settings.backend)
    if bi.precision == "int8":
        bi_path = f"passages and queries int8 on {engine}"
    else:
        bi_path = f"passages {bi.precision} on torch, queries fp32 on {engine}"
    lines = [f"bi-encoder: {bi_path} ({bi.reason})"]
    if settings.rerank_model:
        # Re-rank is off by default but a request may ask for it, so its path is still news.
        rr = choose("rerank", settings.rerank_precision, cpu, settings.backend)
        rr_engine = "torch" if rr.precision == "bf16" else engine
        when = "" if settings.rerank else "; only for requests that ask for re-rank"
        lines.append(f"re-ranker: {rr.precision} on {rr_engine} ({rr.reason}{when})")
    capability = torch_capability()
    lines.append(
        f"CPU: {cpu.describe()}" + (f"; torch dispatch {capability}" if capability else "")
    )
    return lines
