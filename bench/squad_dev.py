"""Build a held-out tuning collection from SQuAD v1.1 *dev* (never from shared/eval).

heed's fusion and re-rank defaults are chosen on this collection, so the test collections in
shared/eval stay untouched by tuning. Written to var/ (git-ignored): the repository never holds
a copy of shared data.

    python -m bench.squad_dev [--questions 300] [--out var/squad-dev]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from pathlib import Path

SQUAD = Path(__file__).resolve().parents[2] / "shared" / "train" / "squad-v1.1"


def build(out: Path, questions: int, seed: int = 7) -> None:
    with gzip.open(SQUAD / "paragraphs.jsonl.gz", "rt") as fh:
        paragraphs = [p for p in map(json.loads, fh) if p["split"] == "dev"]
    with gzip.open(SQUAD / "questions.jsonl.gz", "rt") as fh:
        dev_questions = [q for q in map(json.loads, fh) if q["split"] == "dev"]
    random.Random(seed).shuffle(dev_questions)
    picked = dev_questions[:questions]
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w") as fh:
        for p in paragraphs:
            fh.write(json.dumps({"_id": p["pid"], "title": p["title"], "text": p["text"]}) + "\n")
    with (out / "queries.jsonl").open("w") as fh:
        for q in picked:
            fh.write(json.dumps({"_id": q["qid"], "text": q["question"]}) + "\n")
    with (out / "qrels" / "test.tsv").open("w") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for q in picked:
            fh.write(f"{q['qid']}\t{q['pid']}\t1\n")
    print(f"{out}: {len(paragraphs)} paragraphs, {len(picked)} questions")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("var/squad-dev"))
    args = parser.parse_args()
    build(args.out, args.questions)
