"""`heed train-reranker`: fine-tune heed's cross-encoder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.app import out, progress_bar
from heed.settings import Settings


def train_reranker(
    data: Annotated[Path, typer.Option(help="SQuAD pairs folder")] = Path(
        "../shared/train/squad-v1.1"
    ),
    out_dir: Annotated[Path, typer.Option("--out", help="model folder to write")] = Path(
        "models/heed-reranker-minilm"
    ),
    steps: Annotated[int, typer.Option(min=1, help="optimiser steps of the schedule")] = 1000,
    time_budget: Annotated[
        float | None, typer.Option(help="minutes before this run stops (resume later)")
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from OUT/checkpoint.pt")] = False,
    seed: Annotated[int, typer.Option(help="random seed")] = 13,
    limit: Annotated[int | None, typer.Option(help="train on the first N questions only")] = None,
    dev_questions: Annotated[int, typer.Option(help="held-out SQuAD dev questions")] = 200,
    dev_every: Annotated[int, typer.Option(help="steps between dev checks")] = 150,
) -> None:
    """Fine-tune heed's cross-encoder on CPU, checkpointing so a run can resume."""
    from heed.models.encoders import resolve_model, set_threads
    from heed.models.training import Progress as TrainProgress
    from heed.models.training import TrainConfig, train

    settings = Settings()
    set_threads(settings.threads)
    cfg = TrainConfig(
        data_dir=data,
        out_dir=out_dir,
        base_model=Path(resolve_model(settings.embed_model)),
        steps=steps,
        time_budget_s=time_budget * 60 if time_budget else None,
        seed=seed,
        limit_questions=limit,
        dev_questions=dev_questions,
        dev_every=dev_every,
        command="heed " + " ".join(sys.argv[1:]),
    )
    with progress_bar() as bar:
        task = bar.add_task("training", total=steps)

        def on_progress(p: TrainProgress) -> None:
            bar.update(
                task,
                completed=p.step,
                description=f"loss {p.loss:.3f} | {p.pairs_per_s:.1f} pairs/s",
            )

        state = train(cfg, resume=resume, on_progress=on_progress)
    last = state.history[-1]
    out.print(
        f"step {state.step}/{steps}; dev acc@1 {last['dev_acc@1']:.3f}, MRR {last['dev_mrr']:.3f}; "
        f"model in {out_dir}"
    )
