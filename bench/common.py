"""What every benchmark shares: paths, the server under test, latency percentiles, results files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "python-docs.jsonl"
RESULTS = ROOT / "bench" / "results"
VAR = ROOT / "var" / "bench"
# OMP_WAIT_POLICY=PASSIVE: spinning OpenMP threads starve everything else on a small machine.
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(index_dir: Path, **env: str) -> tuple[subprocess.Popen, str]:
    """A real `heed serve` on 127.0.0.1, once ready; ``env`` adds HEED_* settings."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "heed", "serve", "--index", str(index_dir), "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env={**ENV, **env}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"heed serve exited with {proc.returncode}")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def build_shipped_index(index_dir: Path) -> None:
    """`heed index` of the shipped corpus into ``index_dir``, in its own process."""
    subprocess.run(
        [sys.executable, "-m", "heed", "index", str(CORPUS), "--index", str(index_dir)],
        env=ENV,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def percentiles(latencies_ms: Sequence[float]) -> dict[str, float]:
    t = np.asarray(latencies_ms, dtype=float)
    if not len(t):
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
    return {f"p{p}_ms": round(float(np.percentile(t, p)), 1) for p in (50, 95, 99)}


def write_results(name: str, payload: dict) -> Path:
    """bench/results/<name>.json, with the core count every number here depends on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps({"cores": os.cpu_count(), **payload}, indent=2) + "\n")
    return out
