"""`prism generate` and `prism restore`: the stylegan face commands (registered by prism.cli)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from prism.cli_common import MODEL_HELP, PRECISION_HELP, console, fail, load_predictor


def _load_face_model(model: str, device: str, precision: str = "fp32"):
    return load_predictor(model, device, ("stylegan",), "stylegan face", precision)


def generate(model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
             count: int = typer.Option(16, "--count", "-n", min=1, help="How many faces."),
             seed: int = typer.Option(0, "--seed", help="The same seed gives the same faces."),
             psi: float = typer.Option(1.0, "--psi", help="Truncation: < 1 trades variety for fewer failures (0 = the average face)."),
             out_dir: Path = typer.Option(Path("generated"), "--out", "-o", help="Output folder."),
             device: str = typer.Option("cpu", "--device"),
             precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP)):
    """Generate new faces with a stylegan model: OUT/seed-S-0000.png, ..."""
    generator = _load_face_model(model, device, precision)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(generator.generate(count, seed=seed, psi=psi)):
        img.save(out_dir / f"seed-{seed}-{i:04d}.png")
    console.print(f"{count} face(s) written to {out_dir}")
    print(out_dir.resolve())


def restore(image: Path = typer.Argument(..., help="A photo of a face (aligned automatically unless --no-align)."),
            model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
            degradation: str = typer.Option(..., "--degradation", "-d", help="gray | mask | downsample | none, or a chain such as gray+mask."),
            mask: Optional[Path] = typer.Option(None, "--mask", help="mask degradation: an image, white = missing pixels."),
            rect: Optional[str] = typer.Option(None, "--rect", help="mask degradation: the missing rectangle x,y,w,h in the photo's pixels."),
            factor: int = typer.Option(4, "--factor", help="downsample degradation: the reduction factor."),
            steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Optimisation steps (default: the model card's restore.steps, or restore.encoder_steps where its encoder gives the start; else 300)."),
            space: str = typer.Option("w+", "--space", help="w (one latent for all layers) or w+ (one per layer: closer fits)."),
            align: bool = typer.Option(True, "--align/--no-align", help="Find the face (dlib) and cut it like the training faces; --no-align for an aligned crop."),
            frame_every: int = typer.Option(10, "--frame-every", min=0, help="Save a progress frame every N steps (0 = none, no GIF)."),
            lpips_vgg16: Optional[Path] = typer.Option(None, "--lpips-vgg16", help="torchvision VGG16 weights (vgg16-397923af.pth), with --lpips-lin: LPIPS distance."),
            lpips_lin: Optional[Path] = typer.Option(None, "--lpips-lin", help="LPIPS v0.1 linear layers (vgg.pth)."),
            seed: int = typer.Option(0, "--seed"),
            samples: Optional[int] = typer.Option(None, "--samples", min=1, help="Independent projections; the restoration is built from their mean (closer on average, smoother) and uncertainty.png shows where they disagree (default: the model card's restore.samples, or restore.encoder_samples where its encoder gives the start; else 1)."),
            spread: Optional[float] = typer.Option(None, "--spread", min=0.0, help="With --samples K > 1: samples 2..K start this far from the start, x W's RMS radius, so their mean averages nearby faces that fit (default: the model card's restore.spread, or restore.encoder_spread where its encoder gives the start; else 0)."),
            out_dir: Path = typer.Option(Path("restored"), "--out", "-o", help="Output folder."),
            device: str = typer.Option("cpu", "--device"),
            precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
            progress: bool = typer.Option(True, "--progress/--no-progress")):
    """Restore a degraded face by projecting it into a stylegan model's latent space: writes the
    restored image, the projection, the latent w (.npy), progress frames, a GIF and the loss curve."""
    from prism.data.images import ImageReadError
    from prism.restore.align import AlignmentUnavailable, FaceNotFound
    generator = _load_face_model(model, device, precision)
    box = None
    if rect:
        try:
            box = tuple(int(v) for v in rect.split(","))
            assert len(box) == 4
        except (ValueError, AssertionError):
            fail(f"--rect must be x,y,w,h in pixels, got {rect!r}")
    if "mask" in degradation and not (mask or box):
        fail("the mask degradation needs --mask FILE (white = missing) or --rect x,y,w,h")
    try:
        result = generator.restore(image, degradation=degradation, steps=steps, mask=mask, rect=box, factor=factor,
                                   align=align, space=space, lpips_vgg16=lpips_vgg16, lpips_lin=lpips_lin,
                                   frame_every=frame_every, seed=seed, samples=samples, spread=spread,
                                   progress=progress)
    except (FaceNotFound, AlignmentUnavailable, ImageReadError, ValueError, FileNotFoundError) as e:
        fail(str(e))
    paths = result.save(out_dir)
    console.print(f"distance: {result.distance}; final distance {result.distances[-1]:.4g} "
                  f"(loss {result.losses[-1]:.4g}) after {len(result.losses)} steps")
    for name, path in paths.items():
        console.print(f"  {name}: {path}", soft_wrap=True)
    print(paths["restored"].resolve())
