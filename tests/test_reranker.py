"""heed's shipped cross-encoder: loads offline, ranks sensibly, and its training resumes."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from cli.mining import family, mine_hard_negatives
from heed.errors import InvalidInput
from heed.models.encoders import load_reranker, resolve_model
from heed.models.gated_cross_encoder import GatedCrossEncoder
from heed.models.training_data import is_near_duplicate, read_pairs, training_files
from heed.settings import Settings

# Same format as shared/train/squad-v1.1, built from tests/fixtures/mini.jsonl with hand-written
# questions, so the training test runs anywhere.
PAIRS = Path(__file__).parent / "fixtures" / "pairs"


@pytest.fixture(scope="module")
def reranker():
    return load_reranker(Settings().rerank_model, Settings().model_runtime())


@pytest.mark.parametrize(
    ("query", "relevant", "irrelevant"),
    [
        (
            "how many people live in berlin",
            "Berlin has about 3.7 million registered inhabitants, the most of any German city.",
            "New York is famous for the Metropolitan Museum of Art and Central Park.",
        ),
        (
            "what temperature should water be for green tea",
            "Brew green tea with water at about 80 degrees Celsius; boiling water makes it bitter.",
            "Tea plantations in Assam cover large areas of the Brahmaputra valley.",
        ),
        (
            "What are the symptoms of migraine ?",
            "Migraine causes a throbbing headache, often on one side, with nausea and "
            "sensitivity to light and sound.",
            "Migraine research is funded by several national institutes and private foundations.",
        ),
        (
            "Contrastive pre-training of sentence embeddings",
            "We pre-train a sentence encoder with a contrastive loss over paired sentences and "
            "show that the embeddings improve semantic similarity and retrieval benchmarks.",
            "We study the convergence of stochastic gradient descent on non-convex objectives.",
        ),
        (
            "how do I remove a key from a python dictionary",
            "Use del d[key] or d.pop(key) to remove an item from a dict.",
            "Lists keep their items in insertion order and can be sorted in place.",
        ),
    ],
)
def test_shipped_model_scores_the_relevant_passage_higher(reranker, query, relevant, irrelevant):
    scores = reranker.score(query, [relevant, irrelevant])
    assert scores[0] > scores[1]


def test_shipped_model_is_heeds_own_gated_cross_encoder_and_reads_pairs_jointly(reranker):
    model = reranker.torch_model()
    assert isinstance(model, GatedCrossEncoder)
    # Cross-attention is really open: the query changes the passage's contextual vectors.
    batch = model.encode_pairs(["berlin population", "tea"], ["Berlin has 3.7 million people."] * 2)
    hidden, _ = model.hidden_states(batch)
    seg = batch["segments"]
    p0 = hidden[0][seg[0] == 1].mean(0)
    p1 = hidden[1][seg[1] == 1].mean(0)
    assert not np.allclose(p0.detach().numpy(), p1.detach().numpy(), atol=1e-4)


def test_model_folder_is_small_and_self_describing():
    folder = Path(resolve_model(Settings().rerank_model))
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < 60_000_000
    head = json.loads((folder / "heed_reranker.json").read_text())
    assert head["architecture"] == "heed-gated-cross-encoder"
    assert "SQuAD" in (folder / "README.md").read_text()


def test_train_reranker_runs_a_few_steps_and_resumes(tmp_path):
    runner = CliRunner()
    args = [
        "train-reranker",
        "--data",
        str(PAIRS),
        "--out",
        str(tmp_path),
        "--limit",
        "8",
        "--dev-questions",
        "4",
        "--dev-every",
        "2",
    ]
    first = runner.invoke(app, [*args, "--steps", "4", "--time-budget", "0.001"])
    assert first.exit_code == 0, first.output
    assert "step 0/4" in first.output and (tmp_path / "checkpoint.pt").is_file()
    second = runner.invoke(app, [*args, "--steps", "4", "--resume"])
    assert second.exit_code == 0, second.output
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").open()]
    assert [e["step"] for e in log] == [0, 2, 4]
    assert "step 4/4" in second.output
    assert (tmp_path / "heed_reranker.json").is_file() and (tmp_path / "README.md").is_file()
    reloaded = GatedCrossEncoder.load(tmp_path)
    assert reloaded.score("berlin", ["Berlin is a city."]).shape == (1,)


# The domain-pairs format ({query, positive, negatives, source}), hand-written over
# tests/fixtures/mini.jsonl, with rows from every source the dev suite holds out.
DOMAIN_PAIRS = Path(__file__).parent / "fixtures" / "domain-pairs"


def test_training_pairs_never_include_the_dev_suites_held_out_sources():
    pairs = [p for f in training_files(DOMAIN_PAIRS) for p in read_pairs(f)]
    sources = {p.source for p in pairs}
    assert "medquad/1_CancerGov_QA" in sources and "scitldr-a/train/title" in sources
    assert not sources & {"medquad/5_NIDDK_QA", "medquad/6_NINDS_QA"}
    assert not any(s.startswith(("scitldr-a/test/", "stackexchange/")) for s in sources)
    assert read_pairs(DOMAIN_PAIRS / "skeptics-stackexchange.jsonl.gz") == []


def test_a_bad_training_line_is_reported_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write(json.dumps({"query": "q", "positive": "p", "negatives": []}) + "\n{oops\n")
    with pytest.raises(InvalidInput, match=r"bad.jsonl.gz:2: not a training pair"):
        read_pairs(bad)


@pytest.mark.parametrize(
    ("data", "extra"),
    [
        (PAIRS, []),  # SQuAD's format: its own negatives
        (DOMAIN_PAIRS, ["--negatives", "3", "--mined", "3", "--distill", "0.5"]),
    ],
    ids=["squad", "domain-pairs"],
)
def test_train_reranker_runs_a_few_steps_on_each_format_and_resumes(tmp_path, data, extra):
    runner = CliRunner()
    args = ["train-reranker", "--data", str(data), "--out", str(tmp_path), *extra]
    args += ["--dev-questions", "2", "--dev-every", "2", "--steps", "4"]
    first = runner.invoke(app, [*args, "--time-budget", "0.001"])
    assert first.exit_code == 0, first.output
    assert "step 0/4" in first.output and (tmp_path / "checkpoint.pt").is_file()
    second = runner.invoke(app, [*args, "--resume"])
    assert second.exit_code == 0, second.output
    assert "step 4/4" in second.output
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").open()]
    assert [e["step"] for e in log] == [0, 2, 4]
    with gzip.open(tmp_path / "groups.jsonl.gz", "rt") as fh:
        groups = json.load(fh)
    queries = [q for q, _ in groups["train"] + groups["dev"]]
    assert "What is (are) pickle ?" not in queries and "Anonymous functions" not in queries
    for _query, (positive, *negatives) in groups["train"] + groups["dev"]:
        assert positive not in negatives
    assert GatedCrossEncoder.load(tmp_path).score("csv", ["CSV files."]).shape == (1,)


def test_mined_negatives_come_from_the_same_sources_passages_never_the_positive(tmp_path):
    settings = Settings(index_dir=tmp_path / "unused")
    pairs = [p for f in training_files(DOMAIN_PAIRS) for p in read_pairs(f)]
    pool: dict[str, set[str]] = {}
    for p in pairs:
        pool.setdefault(family(p.source), set()).update([p.positive, *p.negatives])
    given = {p.query: list(p.negatives) for p in pairs}
    mine_hard_negatives(pairs, settings, tmp_path, count=2)
    for p in pairs:
        assert len(p.negatives) >= 2 and len(set(p.negatives)) == len(p.negatives)
        assert set(p.negatives) <= pool[family(p.source)]
        assert set(given[p.query]) <= set(p.negatives)  # given negatives are kept, after
        assert not any(is_near_duplicate(n, p.positive) for n in p.negatives)
    # SciTLDR rows come without negatives: every one of theirs was mined
    assert all(len(p.negatives) == 2 for p in pairs if p.source.startswith("scitldr"))
