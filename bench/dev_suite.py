"""The re-ranker's leave-domain-out dev suite: first stage vs + re-rank on five collections.

Every re-rank setting (data mix, steps, depth, weight, on or off by default) is chosen on this
suite's *average*, never on one collection, and no training run may read these collections:

- cranfield: aeronautics abstracts (../shared/eval/cranfield, read in place);
- squad-dev: Wikipedia paragraphs, SQuAD v1.1 dev questions (``bench.squad_dev``);
- scitldr-test: SciTLDR's *test* split, title and TLDR queries -> every abstract of the file;
- medquad-held-out: MedQuAD's NINDS and NIDDK sources only (a training mix must leave them out),
  questions -> the answers of those two sources;
- skeptics: Skeptics Stack Exchange claims -> every accepted answer.

Collections are written to var/dev-suite/ (git-ignored: the repository never holds a copy of
shared data), then each is measured by ``heed eval`` in its own process, so the numbers are the
ones a user gets from the CLI.

    python -m bench.dev_suite [--queries 200] [--modes dense,hybrid,dense+rerank,hybrid+rerank]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.common import ENV, ROOT, write_results
from bench.squad_dev import build as build_squad_dev

# What the suite measures on, which heed.models.training_data keeps out of every training run.
from heed.models.training_data import MEDQUAD_HELD_OUT, SCITLDR_HELD_OUT

SHARED = ROOT.parent / "shared"
PAIRS = SHARED / "train" / "domain-pairs"
OUT = ROOT / "var" / "dev-suite"
SEED = 7
DEFAULT_MODES = "dense,hybrid,dense+rerank,hybrid+rerank"


def _rows(name: str) -> Iterable[dict]:
    with gzip.open(PAIRS / name, "rt") as fh:
        yield from map(json.loads, fh)


def _doc_id(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _write_beir(
    out: Path, pairs: list[tuple[str, str]], corpus: Iterable[str], queries: int
) -> str:
    """A BEIR folder of (query, relevant passage) pairs over ``corpus``; a sample of the queries."""
    docs = {_doc_id(text): text for text in corpus}
    picked = sorted(set(pairs))
    random.Random(SEED).shuffle(picked)
    picked = picked[:queries]
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w") as fh:
        for doc_id, text in docs.items():
            fh.write(json.dumps({"_id": doc_id, "title": "", "text": text}) + "\n")
    with (out / "queries.jsonl").open("w") as fh, (out / "qrels" / "test.tsv").open("w") as qrels:
        qrels.write("query-id\tcorpus-id\tscore\n")
        for n, (query, positive) in enumerate(picked):
            fh.write(json.dumps({"_id": f"q{n}", "text": query}) + "\n")
            qrels.write(f"q{n}\t{_doc_id(positive)}\t1\n")
    return f"{out.name}: {len(docs)} documents, {len(picked)} queries"


def scitldr_test(out: Path, queries: int) -> str:
    rows = list(_rows("scitldr.jsonl.gz"))
    pairs = [(r["query"], r["positive"]) for r in rows if r["source"].startswith(SCITLDR_HELD_OUT)]
    return _write_beir(out, pairs, (r["positive"] for r in rows), queries)


def medquad_held_out(out: Path, queries: int) -> str:
    rows = [r for r in _rows("medquad.jsonl.gz") if r["source"] in MEDQUAD_HELD_OUT]
    pairs = [(r["query"], r["positive"]) for r in rows]
    return _write_beir(out, pairs, (r["positive"] for r in rows), queries)


def skeptics(out: Path, queries: int) -> str:
    rows = list(_rows("skeptics-stackexchange.jsonl.gz"))
    pairs = [(r["query"], r["positive"]) for r in rows]
    return _write_beir(out, pairs, (r["positive"] for r in rows), queries)


def squad_dev(out: Path, queries: int) -> str:
    build_squad_dev(out, queries)
    return f"{out.name}: SQuAD v1.1 dev, {queries} questions"


BUILDERS: dict[str, Callable[[Path, int], str]] = {
    "squad-dev": squad_dev,
    "scitldr-test": scitldr_test,
    "medquad-held-out": medquad_held_out,
    "skeptics": skeptics,
}


def collections(queries: int) -> dict[str, Path]:
    """Every suite collection as a BEIR folder, built on first use."""
    found = {"cranfield": SHARED / "eval" / "cranfield"}
    for name, build in BUILDERS.items():
        folder = OUT / f"{name}-{queries}"
        if not (folder / "qrels" / "test.tsv").exists():
            print(build(folder, queries))
        found[name] = folder
    return found


def evaluate(name: str, folder: Path, modes: str, extra: list[str]) -> dict:
    """``heed eval`` in its own process; its JSON report (cached by settings in var/)."""
    report = (
        OUT
        / "reports"
        / f"{name}-{hashlib.sha1((modes + str(extra)).encode()).hexdigest()[:8]}.json"
    )
    if not report.exists():
        report.parent.mkdir(parents=True, exist_ok=True)
        heed = Path(sys.executable).parent / "heed"
        cmd = [str(heed), "eval", str(folder), "--modes", modes, "--json", str(report), *extra]
        subprocess.run(cmd, env=ENV, cwd=ROOT, check=True)
    return json.loads(report.read_text())


def gains(reports: dict[str, dict]) -> dict[str, dict[str, float]]:
    """nDCG@10 of + re-rank minus its first stage, per collection (the issue's measure)."""
    out: dict[str, dict[str, float]] = {}
    for name, doc in reports.items():
        modes = {m: row["ndcg@10"] for m, row in doc["modes"].items()}
        out[name] = {
            f"{first}+rerank": modes[f"{first}+rerank"] - modes[first]
            for first in ("dense", "hybrid")
            if first in modes and f"{first}+rerank" in modes
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200, help="queries per built collection")
    parser.add_argument("--modes", default=DEFAULT_MODES)
    parser.add_argument("--only", help="comma-separated collection names")
    parser.add_argument("--name", default="dev_suite", help="bench/results/<name>.json")
    parser.add_argument("eval_args", nargs="*", help="passed to heed eval, after --")
    args = parser.parse_args()

    suite = collections(args.queries)
    if args.only:
        suite = {k: v for k, v in suite.items() if k in args.only.split(",")}
    reports = {
        name: evaluate(name, folder, args.modes, args.eval_args) for name, folder in suite.items()
    }
    delta = gains(reports)

    modes = args.modes.split(",")
    table = Table(title="dev suite: nDCG@10 per collection (re-rank gain over its first stage)")
    table.add_column("collection")
    table.add_column("queries", justify="right")
    for mode in modes:
        table.add_column(mode, justify="right")
    for first in ("dense", "hybrid"):
        if f"{first}+rerank" in modes and first in modes:
            table.add_column(f"Δ {first}", justify="right")
    rows = {}
    for name, doc in reports.items():
        ndcg = {m: doc["modes"][m]["ndcg@10"] for m in modes}
        rows[name] = {"queries": doc["queries"], "ndcg@10": ndcg, "gain": delta[name]}
        table.add_row(
            name,
            str(doc["queries"]),
            *(f"{ndcg[m]:.3f}" for m in modes),
            *(f"{g:+.3f}" for g in delta[name].values()),
        )
    average = {m: sum(r["ndcg@10"][m] for r in rows.values()) / len(rows) for m in modes}
    average_gain = {
        k: sum(r["gain"][k] for r in rows.values()) / len(rows) for k in next(iter(delta.values()))
    }
    table.add_row(
        "average",
        "",
        *(f"{average[m]:.3f}" for m in modes),
        *(f"{g:+.3f}" for g in average_gain.values()),
        style="bold",
    )
    console = Console(width=120)  # the table, not the terminal, sets the width (logs too)
    console.print(table)
    command = "python -m bench.dev_suite " + " ".join(sys.argv[1:])
    console.print(f"printed by: {command.strip()}")
    path = write_results(
        args.name,
        {
            "command": command.strip(),
            "collections": rows,
            "average": average,
            "average_gain": average_gain,
            "settings": next(iter(reports.values()))["settings"],
        },
    )
    console.print(f"written: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
