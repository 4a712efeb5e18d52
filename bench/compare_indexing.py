"""Indexing throughput and peak memory: heed vs txtai vs bare sentence-transformers, one run.

Each contender runs in its own process (``bench.stages``) on the same passages with the same
MiniLM weights and batch size: heed's whole write path from raw documents (chunking, SQLite, FTS5,
FAISS, hashes), txtai ``Embeddings`` (faiss backend, ``content=True`` so it stores the text too,
saved to disk) and a bare ``SentenceTransformer.encode``. Corpora: the shipped one, and a large
one generated into var/bench/ from Cranfield (read in place) plus re-segmented Cranfield text.

    python -m bench.compare_indexing [--corpus shipped|large|both] [--passages 20000]
        [--docs N] [--contenders heed txtai]

``--docs N`` takes the first N documents of each corpus (a shorter run on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.common import CORPUS, ROOT, VAR, write_results
from bench.stages import run_stage

CRANFIELD = ROOT.parent / "shared" / "eval" / "cranfield" / "corpus.jsonl"
CONTENDERS = [("heed", "heed index"), ("txtai", "txtai Embeddings"), ("plain", "bare ST encode")]


def large_corpus(passages: int, seed: int = 7) -> Path:
    """Cranfield's 1,400 abstracts, then new documents made of shuffled Cranfield sentences.

    Each generated document has the length of a random real abstract, capped at ~one passage
    (120 words), so the corpus reaches about ``passages`` passages of realistic length, all
    distinct. Written to var/bench/ (git-ignored); Cranfield itself is only read.
    """
    out = VAR / f"cranfield-x{passages}.jsonl"
    if out.exists():
        return out
    if not CRANFIELD.exists():
        raise SystemExit(f"{CRANFIELD} not found: the large corpus is built from it")
    docs = [json.loads(line) for line in CRANFIELD.open()]
    docs = [d for d in docs if d["text"].strip()]
    sentences = [s for d in docs for s in re.split(r"(?<=\s\.)\s+", d["text"]) if len(s) > 20]
    lengths = [min(len(d["text"].split()), 120) for d in docs]
    titles = [d["title"] for d in docs]
    rng = random.Random(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tmp.open("w") as f:
        for d in docs:
            f.write(json.dumps({"id": f"cran-{d['_id']}", "title": d["title"], "text": d["text"]}))
            f.write("\n")
        for i in range(passages - len(docs)):
            want, words, text = rng.choice(lengths), 0, []
            while words < want:
                s = rng.choice(sentences)
                text.append(s)
                words += len(s.split())
            doc = {"id": f"gen-{i}", "title": rng.choice(titles), "text": " ".join(text)}
            f.write(json.dumps(doc) + "\n")
    tmp.replace(out)
    return out


def first_docs(corpus: Path, docs: int) -> Path:
    """The first ``docs`` documents of ``corpus``, written to var/bench/."""
    out = VAR / f"{corpus.stem}-first{docs}.jsonl"
    with corpus.open() as f:
        out.write_text("".join(line for _, line in zip(range(docs), f, strict=False)))
    return out


def compare(corpus: Path, batch: int, contenders: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="heed-cmp-", dir=VAR) as tmp:
        index_dir = Path(tmp) / "index"
        # heed first: txtai and plain embed the passages heed's build produced
        results = {name: run_stage(name, index_dir, corpus, batch) for name in contenders}
    for r in results.values():
        for other in ("txtai", "plain"):
            if other in results:
                r[f"vs_{other}"] = r["passages_per_s"] / results[other]["passages_per_s"]
    label = corpus.name if corpus == CORPUS else str(corpus.relative_to(ROOT))
    return {"corpus": label, "batch_size": batch, "contenders": results}


def table(run: dict) -> Table:
    passages = run["contenders"]["heed"]["passages"]
    t = Table(title=f"indexing {run['corpus']}: {passages} passages, batch {run['batch_size']}")
    for col in ("contender", "passages", "s", "passages/s", "peak RSS MB", "vs txtai", "vs plain"):
        t.add_column(col, justify="right")
    for name, label in CONTENDERS:
        r = run["contenders"].get(name)
        if r is None:
            continue
        t.add_row(
            label,
            str(r["passages"]),
            f"{r['seconds']:.1f}",
            f"{r['passages_per_s']:.1f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['vs_txtai']:.2f}x" if "vs_txtai" in r else "-",
            f"{r['vs_plain']:.2f}x" if "vs_plain" in r else "-",
        )
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=["shipped", "large", "both"], default="both")
    parser.add_argument("--passages", type=int, default=20_000, help="size of the large corpus")
    parser.add_argument("--batch", type=int, default=32, help="encode batch size, all contenders")
    parser.add_argument("--docs", type=int, help="only the first N documents of each corpus")
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=[c for c, _ in CONTENDERS],
        default=[c for c, _ in CONTENDERS],
    )
    args = parser.parse_args()
    VAR.mkdir(parents=True, exist_ok=True)
    corpora = {"shipped": [CORPUS], "large": [large_corpus(args.passages)]}
    corpora["both"] = corpora["shipped"] + corpora["large"]
    console = Console()
    runs = []
    for corpus in corpora[args.corpus]:
        if args.docs:
            corpus = first_docs(corpus, args.docs)
        contenders = ["heed", *(c for c in args.contenders if c != "heed")]
        runs.append(compare(corpus, args.batch, contenders))
        console.print(table(runs[-1]))
    name = f"compare_indexing_{args.corpus}" + (f"_first{args.docs}" if args.docs else "")
    out = write_results(name, {"runs": runs})
    console.print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
