"""`prism` command line: a thin face over the Python API (prism.load_model, Trainer, evaluate)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="PRISM: GAN image-to-image translation (colorize, train, evaluate, export).")
console = Console(stderr=True)
MODEL_HELP = "A saved model directory, a training run directory (best, else latest checkpoint) or a bundled model name."


def _fail(message: str, code: int = 2):
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)  # paths stay copy-pasteable
    raise typer.Exit(code)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(ctx: typer.Context,
          config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config (see configs/)."),
          runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where numbered run directories go."),
          resume: Optional[Path] = typer.Option(None, "--resume", help="A run directory to continue."),
          devices: Optional[int] = typer.Option(None, "--devices", help="Processes/GPUs (train.devices)."),
          num_nodes: Optional[int] = typer.Option(None, "--num-nodes", help="Machines (train.num_nodes)."),
          progress: bool = typer.Option(True, "--progress/--no-progress")):
    """Train a model: prism train --config configs/colorize/cpu.yaml train.steps=2000 data.train=DIR"""
    from prism import config as C
    from prism.data.images import DataError
    from prism.tasks import resolve_config
    from prism.train.trainer import Trainer, TrainingStopped
    overrides = list(ctx.args)
    if devices is not None:
        overrides.append(f"train.devices={devices}")
    if num_nodes is not None:
        overrides.append(f"train.num_nodes={num_nodes}")
    try:
        if resume:
            if not (resume / "config.yaml").is_file():
                _fail(f"{resume}: not a run directory (no config.yaml)")
            cfg = resolve_config(config, overrides, base=None if config else C.load_yaml(resume / "config.yaml"))
        elif config:
            cfg = resolve_config(config, overrides)
        else:
            _fail("give --config FILE (e.g. configs/colorize/cpu.yaml) or --resume RUN_DIR")
        Trainer(cfg, runs_dir=runs_dir, resume=resume, progress=progress).fit()
    except (C.ConfigError, DataError, FileNotFoundError) as e:
        _fail(str(e))
    except TrainingStopped as e:
        _fail(str(e), code=1)


@app.command()
def colorize(inputs: List[Path] = typer.Argument(..., help="Image files and/or folders (searched recursively)."),
             out_dir: Path = typer.Option(Path("colorized"), "--out", "-o", help="Output folder."),
             model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
             saturation: float = typer.Option(1.0, "--saturation", min=0.0, max=2.0, help="Scale the predicted chroma (0 = gray, 2 = vivid)."),
             render_size: Optional[int] = typer.Option(None, "--render-size", help="Network input size (long side); default from the model card."),
             batch_size: int = typer.Option(8, "--batch-size"),
             device: str = typer.Option("cpu", "--device"),
             progress: bool = typer.Option(True, "--progress/--no-progress")):
    """Colorize black-and-white photos at full resolution; writes into --out, never over an input."""
    import prism
    from prism.data.images import DataError
    from prism.infer import run_on_files
    from prism.modelio import ModelError
    try:
        colorizer = prism.load_model(model, device=device)
    except ModelError as e:
        _fail(str(e))
    if getattr(colorizer, "task", None) != "colorize":
        _fail(f"model '{model}' is a {getattr(colorizer, 'task', '?')} model, not a colorizer")
    if render_size:
        colorizer.render_size = render_size
    try:
        report = run_on_files(inputs, out_dir, lambda imgs: colorizer.colorize_batch(imgs, saturation, batch_size),
                              batch_size=batch_size, progress=progress)
    except DataError as e:
        _fail(str(e))
    _report(report, out_dir)


def _report(report, out_dir: Path) -> None:
    for path, reason in report.failed:
        console.print(f"[red]failed[/] {path}: {reason}", soft_wrap=True)
    console.print(f"{len(report.written)} image(s) written to {out_dir}" +
                  (f", [red]{len(report.failed)} failed[/]" if report.failed else ""))
    print(out_dir.resolve())
    if report.failed:
        raise typer.Exit(1)


@app.command("eval")
def evaluate(task: str = typer.Argument(..., help="Task to evaluate: colorize"),
             model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
             data: Path = typer.Option(..., "--data", "-d", help="Folder of ground-truth images."),
             json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON here."),
             limit: int = typer.Option(0, "--limit", help="Evaluate only the first N images (0 = all)."),
             batch_size: int = typer.Option(16, "--batch-size"),
             device: str = typer.Option("cpu", "--device")):
    """Score a model on a folder: a table on screen, the same numbers as JSON with --json."""
    import prism
    from prism.data.images import DataError
    from prism.modelio import ModelError
    from prism.tasks import task_class
    try:
        predictor = prism.load_model(model, device=device)
        if predictor.task != task:
            _fail(f"model '{model}' is a {predictor.task} model, not {task}")
        results = task_class(task).evaluate(predictor, data, limit=limit, batch_size=batch_size)
    except (ModelError, DataError, KeyError) as e:
        _fail(str(e))
    _print_results(results)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        console.print(f"JSON written to {json_path}")


def _print_results(results: dict) -> None:
    rows = results["rows"]
    table = Table(title=f"{results['task']} on {results['data']} ({results['count']} images)")
    table.add_column("")
    names = list(next(iter(rows.values())))
    for name in names:
        table.add_column(name, justify="right")
    for label, vals in rows.items():
        table.add_row(label, *[f"{vals[n]:.4g}" if isinstance(vals.get(n), float) else str(vals.get(n, "")) for n in names])
    Console().print(table)
    extra = {k: v for k, v in results.items() if k not in ("rows", "task", "data", "count")}
    Console().print("  ".join(f"{k}: {v}" for k, v in extra.items()))


@app.command()
def export(model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
           out: Path = typer.Option(..., "--out", "-o", help="Output model directory."),
           format: str = typer.Option("prism", "--format", help="prism (safetensors + card)."),
           half: bool = typer.Option(False, "--half", help="Store weights as float16 (half the size).")):
    """Export a run or model as a self-contained PRISM model directory."""
    import torch
    from prism.modelio import ModelError, load_nets, save_model
    if format != "prism":
        _fail(f"unknown format '{format}'; available: prism")
    try:
        nets, card = load_nets(model)
    except ModelError as e:
        _fail(str(e))
    save_model(out, nets, card, dtype=torch.float16 if half else torch.float32)
    print(out.resolve())


@app.command()
def models():
    """List the bundled models."""
    from prism.modelio import BUNDLED_DIR, bundled_models
    table = Table(title="bundled models")
    for col in ("name", "task", "networks", "steps"):
        table.add_column(col)
    for name in bundled_models():
        card = json.loads((BUNDLED_DIR / name / "card.json").read_text())
        table.add_row(name, card["task"], ", ".join(f"{k}={v['arch']}" for k, v in card["nets"].items()),
                      str(card.get("training", {}).get("steps", "?")))
    Console().print(table)


def main():
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
