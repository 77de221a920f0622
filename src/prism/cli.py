"""`prism` command line: a thin face over the Python API (prism.load_model, Trainer, evaluate)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from prism.cli_common import (MODEL_HELP, PRECISION_HELP, SKIP_EXISTING_HELP, backend_model, console, fail,
                              load_predictor, report_written, run_files)
from prism.cli_faces import generate, restore

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="PRISM: GAN image-to-image translation (colorize, train, evaluate, export).")


# The config's sections, for `prism train --help`; tests check it against every task's defaults.
CONFIG_SECTIONS = {"every task": ("task", "name", "seed", "data", "nets", "optim", "loss", "train"),
                   "colorize": ("render_size",), "oasis": ("ema_stats",), "stylegan": ("sample", "align", "restore"),
                   "stylegan_encoder": ("generator", "align", "restore")}
OVERRIDES_HELP = ("Config overrides, SECTION.KEY=VALUE (values are YAML: 3, 2e-4, true, [0.5, 0.999], null), "
                  "e.g. train.steps=2000 data.train=DIR nets.G.width=64. Sections: "
                  + "; ".join(f"{who}: {', '.join(names)}" for who, names in CONFIG_SECTIONS.items())
                  + ". The run's resolved config is saved as RUN/config.yaml.")


@app.command()
def train(overrides: Optional[List[str]] = typer.Argument(None, metavar="SECTION.KEY=VALUE", help=OVERRIDES_HELP,
                                                         show_default=False),
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
    from prism.train.rundir import RunLocked
    from prism.train.trainer import Trainer, TrainingStopped
    overrides = list(overrides or [])
    if devices is not None:
        overrides.append(f"train.devices={devices}")
    if num_nodes is not None:
        overrides.append(f"train.num_nodes={num_nodes}")
    try:
        if resume:
            if not (resume / "config.yaml").is_file():
                fail(f"{resume}: not a run directory (no config.yaml)")
            cfg = resolve_config(config, overrides, base=None if config else C.load_yaml(resume / "config.yaml"))
        elif config:
            cfg = resolve_config(config, overrides)
        else:
            fail("give --config FILE (e.g. configs/colorize/cpu.yaml) or --resume RUN_DIR")
        Trainer(cfg, runs_dir=runs_dir, resume=resume, progress=progress).fit()
    except (C.ConfigError, DataError, FileNotFoundError) as e:
        fail(str(e))
    except RunLocked as e:
        fail(str(e))
    except TrainingStopped as e:
        fail(str(e), code=1)




@app.command()
def colorize(inputs: List[Path] = typer.Argument(..., help="Image files and/or folders (searched recursively)."),
             out_dir: Path = typer.Option(Path("colorized"), "--out", "-o", help="Output folder."),
             model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
             saturation: float = typer.Option(1.0, "--saturation", min=0.0, max=2.0, help="Scale the predicted chroma (0 = gray, 1 = the model's own, 2 = vivid)."),
             render_size: Optional[int] = typer.Option(None, "--render-size", help="Network input size (long side); default from the model card."),
             batch_size: int = typer.Option(8, "--batch-size"),
             device: str = typer.Option("cpu", "--device"),
             backend: str = typer.Option("torch", "--backend", help="torch, or onnxruntime (a .onnx --model, or any model exported on the fly)."),
             precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
             skip_existing: bool = typer.Option(False, "--skip-existing", help=SKIP_EXISTING_HELP),
             progress: bool = typer.Option(True, "--progress/--no-progress")):
    """Colorize black-and-white photos at full resolution; writes into --out, never over an input."""
    colorizer = load_predictor(backend_model(model, backend), device, ("colorize",), "colorization", precision)
    if render_size:
        colorizer.render_size = render_size
    run_files(inputs, out_dir, lambda imgs: colorizer.colorize_batch(imgs, saturation, batch_size), batch_size, progress,
              skip_existing)


@app.command("eval")
def evaluate(task: Optional[str] = typer.Argument(None, help="Task to evaluate: colorize, stylegan (restore), segment, oasis, cyclegan, pix2pix; default: the model's own."),
             model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
             data: Path = typer.Option(..., "--data", "-d", help="Folder of ground-truth images (segment, oasis: the photos, or the label maps' folder for Cityscapes' gtFine/SPLIT and colour pair images)."),
             labels: Optional[Path] = typer.Option(None, "--labels", help="segment, oasis: folder of label maps, for formats that keep them apart from the photos (CamVid's valannot, generic)."),
             segmenter: Optional[str] = typer.Option(None, "--segmenter", help="oasis: a segment model (same classes) that labels the generated photos: mIoU."),
             inception_weights: Optional[Path] = typer.Option(None, "--inception-weights", help="oasis, cyclegan, pix2pix: the FID Inception-v3 weights (pt_inception-2015-12-05-6726825d.pth; never downloaded; default: $PRISM_FID_WEIGHTS, else the PRISM cache): FID (cyclegan, pix2pix: also KID, MiFID). Without them the same distances are taken in ImageNet EfficientNet-Lite0 feature space (fd_effnet_lite0, ...)."),
             real: Optional[Path] = typer.Option(None, "--real", help="cyclegan, pix2pix: real target-domain images to score the translations of --data against (FID/KID/MiFID; statistics cached per folder); pix2pix default: the pairs' target halves."),
             direction: Optional[str] = typer.Option(None, "--direction", help="cyclegan, pix2pix: AtoB or BtoA; default: the model's own (AtoB when it has both)."),
             seed: Optional[int] = typer.Option(None, "--seed", help="oasis: the noise seed of the generated photos; cyclegan: of the noise in cycle_l1_noisy (default 0)."),
             saturation: Optional[float] = typer.Option(None, "--saturation", min=0.0, max=2.0, help="colorize: score the outputs at this chroma scale (as colorize --saturation)."),
             steps: Optional[int] = typer.Option(None, "--steps", min=1, help="stylegan: projection steps per restoration (default: the model card's)."),
             samples: Optional[int] = typer.Option(None, "--samples", min=1, help="stylegan: projections per face; the restoration is built from their mean (default: the model card's)."),
             spread: Optional[float] = typer.Option(None, "--spread", min=0.0, help="stylegan: how far from the start samples 2..K start, x W's RMS radius (default: the model card's)."),
             json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON here."),
             limit: int = typer.Option(0, "--limit", help="Evaluate only the first N images (0 = all)."),
             batch_size: int = typer.Option(16, "--batch-size"),
             device: str = typer.Option("cpu", "--device"),
             precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP)):
    """Score a model on a folder: a table on screen, the same numbers as JSON with --json."""
    import prism
    from prism.data.images import DataError
    from prism.modelio import ModelError
    from prism.tasks import task_class
    try:
        predictor = prism.load_model(model, device=device, precision=precision)
        task = task or predictor.task
        if task not in (predictor.task, *getattr(predictor, "eval_names", ())):
            fail(f"model '{model}' is a {predictor.task} model, not {task}")
        task_cls = task_class(predictor.card["task"])
        extra = {k: v for k, v in (("labels", labels), ("segmenter", segmenter), ("seed", seed),
                                   ("inception_weights", inception_weights), ("real", real),
                                   ("direction", direction), ("saturation", saturation), ("steps", steps),
                                   ("samples", samples), ("spread", spread)) if v is not None}
        for name in extra:  # an option the task does not take is a mistake, not something to ignore
            if name not in getattr(task_cls, "eval_options", ()):
                fail(f"--{name.replace('_', '-')} does not apply to {predictor.task} models")
        if segmenter is not None:
            extra["segmenter"] = load_predictor(segmenter, device, ("segment",), "segmentation (segment)", precision)
        results = task_cls.evaluate(predictor, data, limit=limit, batch_size=batch_size, **extra)
    except (ModelError, DataError, KeyError, ValueError, FileNotFoundError) as e:
        fail(str(e))
    except NotImplementedError as e:
        fail(str(e) or f"'prism eval {task}' is not available for this model's task yet")
    _print_results(results)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        console.print(f"JSON written to {json_path}")


def _print_results(results: dict) -> None:
    rows = results["rows"]
    table = Table(title=f"{results['task']} on {results['data']} ({results['count']} images)")
    names = list(dict.fromkeys(k for vals in rows.values() for k in vals))
    cell = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v if v is not None else "")  # noqa: E731
    if len(names) > 5:  # many metrics (colorize): one row per metric, one column per model, to fit a terminal
        table.add_column("")
        for label in rows:
            table.add_column(label, justify="right")
        for name in names:
            table.add_row(name, *[cell(vals.get(name)) for vals in rows.values()])
    else:
        table.add_column("")
        for name in names:
            table.add_column(name, justify="right")
        for label, vals in rows.items():
            table.add_row(label, *[cell(vals.get(n)) for n in names])
    Console().print(table)
    # nested details (per-class tables, paired statistics) are for the JSON; notes say them in words
    extra = {k: v for k, v in results.items() if k not in ("rows", "task", "data", "count", "skipped", "notes")
             and not (isinstance(v, dict) and any(isinstance(x, (dict, list)) for x in v.values()))}
    Console().print("  ".join(f"{k}: {v}" for k, v in extra.items()), soft_wrap=True)
    from rich.markup import escape
    for line in results.get("notes", []):  # e.g. why FID was skipped and how to get its weights
        console.print("[yellow]note:[/] " + escape(line), soft_wrap=True)
    for line in results.get("skipped", []):
        console.print(f"[yellow]skipped[/] {line}", soft_wrap=True)


@app.command()
def export(model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
           out: Path = typer.Option(..., "--out", "-o", help="Output model directory."),
           format: str = typer.Option("prism", "--format", help="prism (safetensors + card directory) or onnx (one file)."),
           half: bool = typer.Option(False, "--half", help="prism format: store weights as float16 (half the size)."),
           net: Optional[str] = typer.Option(None, "--net", help="onnx: which network (default: the first, e.g. G).")):
    """Export a run or model: a self-contained PRISM model directory, or an ONNX file."""
    import torch
    from prism.modelio import ModelError, load_nets, save_model
    try:
        if format == "onnx":
            from prism.onnx_export import export_onnx
            export_onnx(model, out, net=net)
        elif format == "prism":
            nets, card = load_nets(model)
            save_model(out, nets, card, dtype=torch.float16 if half else torch.float32)
        else:
            fail(f"unknown format '{format}'; available: prism, onnx")
    except (ModelError, ValueError) as e:
        fail(str(e))
    print(out.resolve())


@app.command()
def models(models_dir: Optional[Path] = typer.Option(None, "--models", help="Also list the saved models in DIR (default: the checkout's models/ folder, when run from one).")):
    """List the bundled models and the saved ones in --models (task, size, headline number)."""
    from prism.modelio import BUNDLED_DIR, CARD, CHECKOUT_MODELS_DIR, bundled_models, headline, saved_models
    if models_dir is not None and not models_dir.is_dir():
        fail(f"{models_dir}: no such folder")
    folder = models_dir or CHECKOUT_MODELS_DIR
    entries = [(name, "bundled", BUNDLED_DIR / name) for name in bundled_models()]
    entries += [(os.path.relpath(path), "saved", path) for path in saved_models(folder)]
    table = Table(title="models")
    for col in ("name (--model)", "kind", "task", "networks", "MB", "steps", "headline"):
        table.add_column(col)
    for name, kind, path in entries:
        card = json.loads((path / CARD).read_text())
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 1e6
        table.add_row(name, kind, card["task"], ", ".join(f"{k}={v['arch']}" for k, v in card["nets"].items()),
                      f"{size:.1f}", str(card.get("training", {}).get("steps", "?")), headline(card))
    Console().print(table)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; 0.0.0.0 exposes the service to the network."),
          port: int = typer.Option(7860, "--port"),
          models_dir: Optional[Path] = typer.Option(None, "--models", help="Also serve every saved PRISM model in DIR (each subdirectory with a card.json)."),
          bundled: bool = typer.Option(True, "--bundled/--no-bundled", help="Serve the bundled models too."),
          max_upload_mb: float = typer.Option(32.0, "--max-upload-mb", help="Largest request body (413 above)."),
          max_pixels: int = typer.Option(25_000_000, "--max-pixels", help="Largest image, in pixels, checked before decoding (413 above)."),
          max_images: int = typer.Option(16, "--max-images", help="Images per request."),
          workers: int = typer.Option(1, "--workers", help="Inference threads."),
          max_queue: int = typer.Option(8, "--max-queue", help="Requests waiting for a worker before 503."),
          cors: List[str] = typer.Option([], "--cors-origin", help="Allow browser calls from this origin (repeatable); off by default."),
          no_ui: bool = typer.Option(False, "--no-ui", help="REST API only, no web app."),
          torch_threads: Optional[int] = typer.Option(None, "--torch-threads", min=1, help="Torch threads per inference (default: torch's; 1 on a CPU busy with other work)."),
          job_workers: int = typer.Option(1, "--job-workers", help="Long jobs (restorations) running at once, beside the inference workers."),
          max_jobs: int = typer.Option(32, "--max-jobs", help="Jobs kept in memory, finished ones included (the oldest finished go first)."),
          job_ttl: float = typer.Option(3600.0, "--job-ttl", help="Seconds a finished job and its result are kept."),
          device: str = typer.Option("cpu", "--device")):
    """Serve the models over HTTP: a web app at /ui and a REST API at /v1 (docs at /docs)."""
    from prism.serve.cli import run_server
    try:
        run_server(host=host, port=port, models_dir=models_dir, bundled=bundled,
                   max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_pixels=max_pixels,
                   max_images=max_images, workers=workers, max_queue=max_queue, cors_origins=list(cors),
                   ui_path="" if no_ui else "/ui", device=device, torch_threads=torch_threads,
                   job_workers=job_workers, max_jobs=max_jobs, job_ttl_s=job_ttl)
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))


@app.command()
def translate(inputs: List[Path] = typer.Argument(..., help="Image files and/or folders (searched recursively)."),
              out_dir: Path = typer.Option(Path("translated"), "--out", "-o", help="Output folder."),
              model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
              direction: Optional[str] = typer.Option(None, "--direction", help="AtoB or BtoA; default: the model's own (AtoB when it has both)."),
              batch_size: int = typer.Option(8, "--batch-size"),
              device: str = typer.Option("cpu", "--device"),
              precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
              skip_existing: bool = typer.Option(False, "--skip-existing", help=SKIP_EXISTING_HELP),
              progress: bool = typer.Option(True, "--progress/--no-progress")):
    """Translate images at their full size with a pix2pix or CycleGAN model; writes into --out, never over an input."""
    translator = _load_translator(model, device, direction, precision)
    run_files(inputs, out_dir, lambda imgs: translator.translate_batch(imgs, direction, batch_size), batch_size, progress,
              skip_existing)


def _load_translator(model: str, device: str, direction: Optional[str], precision: str = "fp32"):
    translator = load_predictor(model, device, ("pix2pix", "cyclegan"), "translation (pix2pix / cyclegan)", precision)
    try:
        translator.generator(direction)
    except ValueError as e:
        fail(str(e))
    return translator


@app.command()
def submit(model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
           photos: Path = typer.Option(..., "--photos", help="Folder of photos to translate (reused cyclically if it has fewer than --count)."),
           count: int = typer.Option(7000, "--count", help="How many images: 7,000 to 10,000."),
           out: Path = typer.Option(Path("images.zip"), "--out", "-o", help="The zip to write."),
           direction: Optional[str] = typer.Option("AtoB", "--direction", help="photo -> painting direction of the model."),
           batch_size: int = typer.Option(8, "--batch-size"),
           device: str = typer.Option("cpu", "--device"),
           precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
           progress: bool = typer.Option(True, "--progress/--no-progress")):
    """Kaggle "I'm Something of a Painter Myself": translate photos into images.zip of 256x256 JPEGs."""
    from prism.data.images import DataError
    from prism.submit import check_count, write_submission
    try:
        check_count(count)
    except ValueError as e:
        fail(str(e))
    translator = _load_translator(model, device, direction, precision)
    try:
        path, skipped = write_submission(translator, photos, count, out, direction, batch_size, progress=progress)
    except (ValueError, DataError) as e:
        fail(str(e))
    for photo, reason in skipped:
        console.print(f"[yellow]skipped[/] {photo}: {reason}", soft_wrap=True)
    console.print(f"{count} images written to {path}")
    print(path.resolve())


@app.command("import")
def import_checkpoint(file: Path = typer.Argument(..., help="The checkpoint file, e.g. latest_net_G_A.pth."),
                      out: Path = typer.Option(..., "--out", "-o", help="Output model directory."),
                      format: str = typer.Option(..., "--format", help="pytorch-cyclegan: a ResnetGenerator state dict from junyanz/pytorch-CycleGAN-and-pix2pix."),
                      direction: str = typer.Option("AtoB", "--direction", help="What the generator translates: AtoB for G_A, BtoA for G_B.")):
    """Import a model trained elsewhere as a PRISM saved model (then: prism translate --model OUT ...)."""
    from prism.interop import ImportFormatError, import_model
    try:
        path = import_model(format, file, out, direction)
    except ImportFormatError as e:
        fail(str(e))
    console.print(f"imported {file} as a PRISM model")
    print(path.resolve())


@app.command("inspect")
def inspect_folders(folders: List[Path] = typer.Argument(..., help="One or two image folders (e.g. the two domains)."),
                    plot: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write a PNG: per-channel histograms side by side, image counts."),
                    progress: bool = typer.Option(True, "--progress/--no-progress")):
    """Counts, sizes, modes and unreadable files of one or two image folders."""
    from rich.progress import Progress
    from prism.data.images import DataError
    from prism.inspect_data import describe_sizes, plot_summaries, summarize_folder
    if len(folders) > 2:
        fail(f"give one or two folders, got {len(folders)}")
    summaries = []
    try:
        with Progress(console=console, disable=not progress, transient=True) as bar:
            for folder in folders:
                task = bar.add_task(str(folder), total=None)
                summaries.append(summarize_folder(folder, progress=lambda n: bar.update(task, completed=n)))
    except DataError as e:
        fail(str(e))
    table = Table(title="image folders")
    for col in ("folder", "files", "readable", "unreadable", "modes", "sizes"):
        table.add_column(col, justify="right" if col in ("files", "readable", "unreadable") else "left")
    for s in summaries:
        table.add_row(str(s.path), str(s.files), str(s.readable), str(len(s.unreadable)),
                      ", ".join(f"{m} ({n})" for m, n in s.modes.most_common()) or "-", describe_sizes(s.sizes))
    Console().print(table)
    for s in summaries:
        for path, reason in s.unreadable[:20]:
            Console().print(f"unreadable {path}: {reason}", soft_wrap=True)
        if len(s.unreadable) > 20:
            Console().print(f"... and {len(s.unreadable) - 20} more unreadable in {s.path}")
    if plot:
        console.print(f"plot written to {plot_summaries(summaries, plot)}")


@app.command()
def synthesize(labels: List[Path] = typer.Argument(..., help="Label map files and/or folders (searched recursively)."),
               out_dir: Path = typer.Option(Path("synthesized"), "--out", "-o", help="Output folder."),
               model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
               seed: int = typer.Option(0, "--seed", help="Noise seed: different seeds, different images."),
               format: Optional[str] = typer.Option(None, "--format", help="How label files are read: cityscapes-ids, camvid, colour or generic (default: as the model's training data)."),
               resample_class: Optional[str] = typer.Option(None, "--resample-class", help="Re-draw only this class (name or index) with --seed; the rest keeps --base-seed's image."),
               base_seed: int = typer.Option(0, "--base-seed", help="With --resample-class: the seed of everything else."),
               render_size: Optional[int] = typer.Option(None, "--render-size", help="Long side the network draws at (default: its training size; 0: the label map's own)."),
               device: str = typer.Option("cpu", "--device"),
               precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
               skip_existing: bool = typer.Option(False, "--skip-existing", help=SKIP_EXISTING_HELP),
               progress: bool = typer.Option(True, "--progress/--no-progress")):
    """Label maps -> photos with an OASIS model, each the size of its label map; writes into --out, never over an input."""
    from prism.data.images import DataError
    synth = load_predictor(model, device, ("oasis",), "semantic synthesis (oasis)", precision)
    from prism.tasks.oasis import synthesize_files
    try:
        if resample_class is not None:
            resample_class = int(resample_class) if resample_class.isdigit() else resample_class
            synth.table.index_of(resample_class)
        report = synthesize_files(synth, labels, out_dir, format, seed, resample_class,
                                  base_seed if resample_class is not None else None,
                                  "card" if render_size is None else (render_size or None), progress, skip_existing)
    except (DataError, ValueError) as e:
        fail(str(e))
    report_written(report, out_dir)


app.command()(generate)
app.command()(restore)


def main():
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
