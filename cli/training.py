"""`heed train-reranker`: fine-tune heed's cross-encoder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.app import out, progress_bar
from heed.settings import Settings


def train_reranker(
    data: Annotated[
        list[Path] | None,
        typer.Option(help="pairs file or folder (SQuAD's, domain-pairs); repeat to mix"),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="model folder to write")] = Path(
        "models/heed-reranker-minilm"
    ),
    steps: Annotated[int, typer.Option(min=1, help="optimiser steps of the schedule")] = 1000,
    time_budget: Annotated[
        float | None, typer.Option(help="minutes before this run stops (resume later)")
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from OUT/checkpoint.pt")] = False,
    seed: Annotated[int, typer.Option(help="random seed")] = 13,
    per_file: Annotated[
        int | None,
        typer.Option("--per-file", "--limit", min=1, help="a seeded sample of N pairs per file"),
    ] = None,
    negatives: Annotated[int, typer.Option(min=1, help="negatives per query group")] = 6,
    mined: Annotated[
        int, typer.Option(min=0, help="hard negatives mined by hybrid search per domain pair")
    ] = 4,
    distill: Annotated[
        float, typer.Option(min=0.0, help="weight of the KL term towards the bi-encoder")
    ] = 0.0,
    init: Annotated[
        Path | None, typer.Option(help="trained heed re-ranker to start from (default: bi-encoder)")
    ] = None,
    lr: Annotated[float, typer.Option(help="encoder learning rate")] = 3e-5,
    max_length: Annotated[
        int, typer.Option(min=32, help="pair length cap in training (inference: 128)")
    ] = 128,
    dev_questions: Annotated[int, typer.Option(help="groups held back for dev checks")] = 200,
    dev_every: Annotated[int, typer.Option(help="steps between dev checks")] = 150,
) -> None:
    """Fine-tune heed's cross-encoder on CPU, checkpointing so a run can resume.

    The dev suite's collections (MedQuAD NIDDK and NINDS, SciTLDR test, Skeptics) are never read.
    """
    from cli.mining import mine_hard_negatives
    from heed.models.encoders import resolve_model, set_threads
    from heed.models.training import Progress as TrainProgress
    from heed.models.training import TrainConfig, train
    from heed.models.training_data import TrainPair

    settings = Settings()
    set_threads(settings.threads)
    cfg = TrainConfig(
        data=data or [Path("../shared/train/squad-v1.1")],
        out_dir=out_dir,
        base_model=Path(resolve_model(settings.embed_model)),
        init=init,
        per_file=per_file,
        distill=distill,
        negatives=negatives,
        lr=lr,
        max_length=max_length,
        steps=steps,
        time_budget_s=time_budget * 60 if time_budget else None,
        seed=seed,
        dev_questions=dev_questions,
        dev_every=dev_every,
        command="heed " + " ".join(sys.argv[1:]),
    )

    def mine(pairs: list[TrainPair]) -> list[TrainPair]:
        if not mined:
            return pairs
        return mine_hard_negatives(
            pairs,
            settings,
            out_dir / "mining",
            mined,
            on_progress=lambda name, n, total: out.print(f"mining {name}: {n}/{total}"),
        )

    with progress_bar() as bar:
        task = bar.add_task("training", total=steps)

        def on_progress(p: TrainProgress) -> None:
            bar.update(
                task,
                completed=p.step,
                description=f"loss {p.loss:.3f} | {p.pairs_per_s:.1f} pairs/s",
            )

        state = train(cfg, resume=resume, on_progress=on_progress, mine=mine)
    last = state.history[-1]
    out.print(
        f"step {state.step}/{steps}; dev acc@1 {last['dev_acc@1']:.3f}, MRR {last['dev_mrr']:.3f}; "
        f"model in {out_dir}"
    )
