"""`ansim model ...`: training the image copy descriptor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from ansim.commands.common import JsonFlag, emit_json, err, out, progress_bar, shared_data_root

model_app = typer.Typer(
    help="Learned models: training the image copy descriptor.", no_args_is_help=True
)


@model_app.command("train")
def model_train(
    data: Annotated[
        Path | None, typer.Option(help="The shared images folder (default ../shared/data/images).")
    ] = None,
    steps: Annotated[int, typer.Option(help="Optimiser steps (batches).")] = 700,
    batch_size: Annotated[int, typer.Option(help="Photos per batch (two views each).")] = 48,
    run_dir: Annotated[
        Path, typer.Option(help="Checkpoints and log; an existing checkpoint is resumed.")
    ] = Path("runs/descriptor"),
    output: Annotated[Path, typer.Option(help="Where the final weights go.")] = Path(
        "models/weights/descriptor.pt"
    ),
    seed: Annotated[int, typer.Option(help="Seed of every batch and the initial weights.")] = 17,
    threads: Annotated[int, typer.Option(help="torch threads for the network.")] = 1,
    workers: Annotated[int, typer.Option(help="Processes rendering augmented views.")] = 1,
    json_out: JsonFlag = False,
) -> None:
    """Train the copy-detection descriptor from scratch on bsds500/train + urban100.

    Resumes from RUN_DIR/checkpoint.pt when one exists, so an interrupted run loses at
    most the steps since the last checkpoint. The committed weights came from the defaults.

    Example: `nice ansim model train --steps 700` (about an hour on 2 busy CPU cores)
    """
    from ansim.models.train import TrainConfig, train

    config = TrainConfig(
        data_root=data or shared_data_root() / "images",
        steps=steps,
        batch_size=batch_size,
        run_dir=run_dir,
        output=output,
        seed=seed,
        threads=threads,
        workers=workers,
    )
    with progress_bar() as progress:
        task = progress.add_task("training", total=steps, current="")

        def show(report: Any) -> None:
            progress.update(task, completed=report.step, current=f"loss {report.loss:.3f}")

        try:
            weights = train(config, show)
        except (FileNotFoundError, ValueError) as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from exc
    result = {"weights": str(weights), "steps": steps, "run_dir": str(run_dir)}
    emit_json(result) if json_out else out.print(f"weights written to {weights}")
