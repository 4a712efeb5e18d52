"""heed's shipped cross-encoder: loads offline, ranks sensibly, and its training resumes."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from heed.models.encoders import load_reranker, resolve_model
from heed.models.gated_cross_encoder import GatedCrossEncoder
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
