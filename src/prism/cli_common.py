"""What every `prism` command shares: the error console, help texts, model loading with clear
errors, and the tail of the file commands (write, report failures, exit 1 if any failed)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console(stderr=True)


def _flags_without_type(display_type_rich):
    """typer shows `<bool>` beside every flag (--help, --no-progress), which reads as if it took a
    value; a flag shows no type."""
    def display(self, ctx):
        return None if getattr(self, "is_flag", False) else display_type_rich(self, ctx)
    return display


typer.core.TyperOption.display_type_rich = _flags_without_type(typer.core.TyperOption.display_type_rich)
MODEL_HELP = "A saved model directory, a training run directory (best, else latest checkpoint) or a bundled model name."
PRECISION_HELP = "fp32, bf16 (autocast on CPU or CUDA; pays off on GPUs and CPUs with bf16 units) or fp16 (CUDA)."


def fail(message: str, code: int = 2):
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)  # paths stay copy-pasteable
    raise typer.Exit(code)


def load_predictor(model: Optional[str], device: str, tasks: tuple[str, ...], what: str, precision: str = "fp32"):
    """prism.load_model with the CLI's error handling: a clear message if the model is missing or
    belongs to another task, or the precision does not fit the device."""
    import prism
    from prism.modelio import ModelError
    try:
        predictor = prism.load_model(model, device=device, precision=precision)
    except (ModelError, ValueError, ImportError) as e:
        fail(str(e))
    if getattr(predictor, "task", None) not in tasks:
        fail(f"model '{model}' is a {getattr(predictor, 'task', '?')} model, not a {what} model")
    return predictor


def backend_model(model: Optional[str], backend: str) -> Optional[str]:
    """With --backend onnxruntime, a model that is not already an .onnx file is exported to a
    temporary file first."""
    if backend == "torch" or (model and model.endswith(".onnx")):
        return model
    if backend != "onnxruntime":
        fail(f"unknown backend '{backend}'; use torch or onnxruntime")
    import tempfile
    from prism.onnx_export import export_onnx
    console.print("exporting the model to ONNX for onnxruntime...")
    return str(export_onnx(model, Path(tempfile.mkdtemp(prefix="prism-onnx-")) / "model.onnx"))


def run_files(inputs, out_dir: Path, process, batch_size: int, progress: bool, skip_existing: bool = False) -> None:
    """Every file command's tail: run over the files, report failures, exit 1 if any failed."""
    from prism.data.images import DataError
    from prism.infer import run_on_files
    try:
        report = run_on_files(inputs, out_dir, process, batch_size=batch_size, progress=progress,
                              skip_existing=skip_existing)
    except DataError as e:
        fail(str(e))
    report_written(report, out_dir)


SKIP_EXISTING_HELP = "Leave inputs whose output is already in --out alone (resume an interrupted folder); default: replace them."


def report_written(report, out_dir: Path) -> None:
    """The summary: failures with their reasons, then written / failed / replaced / left alone;
    the output folder's path only when something was written there."""
    for path, reason in report.failed:
        console.print(f"[red]failed[/] {path}: {reason}", soft_wrap=True)
    parts = [f"{len(report.written)} image(s) written" + (f" to {out_dir}" if report.written else "")]
    if report.failed:
        parts.append(f"[red]{len(report.failed)} failed[/]")
    if report.replaced:
        parts.append(f"{len(report.replaced)} replaced (earlier outputs)")
    if report.existing:
        parts.append(f"{len(report.existing)} already there, left alone (--skip-existing)")
    console.print(", ".join(parts), soft_wrap=True)
    if report.written:
        print(out_dir.resolve())
    if report.failed:
        raise typer.Exit(1)
