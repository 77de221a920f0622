"""`prism.load_model(stylegan model)` -> FaceGenerator: `.generate(...)` new faces and
`.restore(photo, degradation=...)` a degraded face by projection into the generator's latent space."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from prism.data.images import float_to_pil, open_image, to_float
from prism.restore import align as A
from prism.restore.degradations import build_degradation, hole_from_file, hole_from_rect, hole_tensor
from prism.restore.perceptual import make_distance
from prism.restore.projector import ProjectionSettings, card_fallbacks, project


def to_pil(x: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [0, 1] -> PIL images."""
    arr = x.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    return [float_to_pil(a) for a in arr]


def to_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]


@dataclass
class RestoreResult:
    restored: Image.Image          # G's image (the mean of the samples) with what the observation still knows put back
    projection: Image.Image        # G(w) itself
    observed: Image.Image          # the degraded input, shown at the model's resolution
    input: Image.Image             # the input as the model saw it (aligned / cropped)
    w: np.ndarray                  # (num_ws, w_dim): the projected latent
    losses: list[float]            # total loss per step (distance + noise regularisation)
    distances: list[float]         # the distance alone per step
    distance: str                  # which distance drove the projection
    degradation: str
    frames: list[tuple[int, Image.Image]] = field(default_factory=list)
    sample_ws: np.ndarray | None = None        # (K, num_ws, w_dim) when restored from K > 1 samples
    uncertainty: Image.Image | None = None     # where the K samples disagree (bright = a guess)
    start: str = "mean w"                      # where the projection started: "mean w" or "encoder"

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """restored.png, projection.png, observed.png, input.png, w.npy, frames/, progress.gif,
        loss.png and result.json (what was used, the final loss)."""
        out = Path(out_dir)
        (out / "frames").mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("restored", "projection", "observed", "input"):
            paths[name] = out / f"{name}.png"
            getattr(self, name).save(paths[name])
        paths["w"] = out / "w.npy"
        np.save(paths["w"], self.w)
        if self.sample_ws is not None:
            paths["sample_ws"] = out / "sample_ws.npy"
            np.save(paths["sample_ws"], self.sample_ws)
        if self.uncertainty is not None:
            paths["uncertainty"] = out / "uncertainty.png"
            self.uncertainty.save(paths["uncertainty"])
        for step, frame in self.frames:
            frame.save(out / "frames" / f"step-{step:05d}.png")
        if self.frames:
            paths["gif"] = out / "progress.gif"
            first, *rest = [f for _, f in self.frames]
            first.save(paths["gif"], save_all=True, append_images=rest, duration=120, loop=0)
        paths["loss"] = out / "loss.png"
        _plot_losses(self.losses, self.distances, paths["loss"], self.distance)
        paths["json"] = out / "result.json"
        paths["json"].write_text(json.dumps({"degradation": self.degradation, "distance": self.distance, "start": self.start,
                                             "samples": 1 if self.sample_ws is None else len(self.sample_ws),
                                             "steps": len(self.losses), "final_loss": self.losses[-1] if self.losses else None,
                                             "final_distance": self.distances[-1] if self.distances else None,
                                             "files": {k: str(v) for k, v in paths.items() if k != "json"}}, indent=2) + "\n")
        return paths


def _plot_losses(losses: list[float], distances: list[float], path: Path, distance: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(range(len(losses)), losses, label="total (with noise regularisation)")
    ax.plot(range(len(distances)), distances, label="distance")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log" if losses and min(losses + distances) > 0 else "linear")
    ax.set_title(f"projection loss ({distance})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


class FaceGenerator:
    task = "stylegan"
    eval_names = ("restore",)  # `prism eval restore` scores its restorations

    def __init__(self, G: torch.nn.Module, D: torch.nn.Module | None, card: dict, encoder: torch.nn.Module | None = None):
        self.G, self.D, self.card = G.eval(), (D.eval() if D is not None else None), card
        # an inversion encoder (stylegan_encoder models): the projection starts at its guess
        self.encoder = encoder.eval() if encoder is not None else None
        self.encoder_degradations = set(card.get("options", {}).get("encoder", {}).get("degradations", ()))
        self.resolution = G.resolution
        self.device = next(G.parameters()).device
        crop = card.get("options", {}).get("align", {})
        self.align_zoom, self.align_shift_y = float(crop.get("zoom", 1.0)), float(crop.get("shift_y", 0.0))
        self.restore_options = dict(card.get("options", {}).get("restore", {}))  # the model's measured defaults

    def projection_defaults(self, degradation: str) -> dict:
        """The card's projection settings for this degradation (chain): steps, samples and spread
        from its `restore` options (else 300, 1, 0); where the projection starts at the encoder's
        guess, `restore.encoder_<name>` replaces `restore.<name>` (from a good guess there is less to
        search, and the guess's own uncertainty sets the spread)."""
        encoder = self.starts_at_encoder(degradation)
        settings = {}
        for name, fallback in card_fallbacks().items():
            keys = [f"encoder_{name}", name] if encoder else [name]
            settings[name] = type(fallback)(next((self.restore_options[k] for k in keys if k in self.restore_options), fallback))
        return settings

    def starts_at_encoder(self, degradation: str) -> bool:
        """Whether a projection under this degradation (chain) starts at the encoder's guess."""
        return self.encoder is not None and set(degradation.split("+")) <= self.encoder_degradations

    # --- generation ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, count: int = 1, seed: int = 0, psi: float = 1.0, batch_size: int = 16,
                 noise_mode: str = "const") -> list[Image.Image]:
        """`count` faces from z ~ N(0, I) drawn with `seed` (the same seed gives the same faces);
        psi < 1 pulls w towards the average face: less variety, fewer failures."""
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        z = torch.randn(count, self.G.z_dim, generator=torch.Generator().manual_seed(seed))
        out = []
        for chunk in z.split(batch_size):
            out += to_pil((self.G(chunk.to(self.device), truncation_psi=psi, noise_mode=noise_mode) + 1) / 2)
        return out

    # --- restoration ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def initial_ws(self, degradation, observed: torch.Tensor) -> torch.Tensor | None:
        """Where the projection starts: the encoder's latents when it learned this degradation,
        else None (the mean w)."""
        if not self.starts_at_encoder(degradation.name):
            return None
        image, hole = degradation.encoder_input(observed, self.resolution)
        dtype = next(self.encoder.parameters()).dtype
        return self.encoder(image.to(dtype), hole.to(dtype)).float()

    def prepare(self, image, align: bool = True, hole: Image.Image | None = None):
        """Photo -> (1, 3, R, R) in [0, 1] framed like the training faces (FFHQ alignment with the
        model's crop, or a centre crop), and the hole mask cut the same way."""
        img = image if isinstance(image, Image.Image) else None
        if img is None and isinstance(image, (str, Path)):
            img = open_image(image).convert("RGB")
        elif img is None:
            loaded = to_float(image)
            img = float_to_pil(loaded.rgb)
        img = ImageOps.exif_transpose(img).convert("RGB")
        R = self.resolution
        if align:
            landmarks = A.detect_landmarks(img)
            face = A.align_face(img, landmarks, R, self.align_zoom, self.align_shift_y)
            hole = A.align_mask(hole, landmarks, R, self.align_zoom, self.align_shift_y) if hole is not None else None
        else:
            face = ImageOps.fit(img, (R, R), Image.LANCZOS)
            hole = ImageOps.fit(hole, (R, R), Image.NEAREST) if hole is not None else None
        return to_tensor(face), hole

    def restore(self, image, degradation: str = "gray", steps: int | None = None, mask=None, rect=None, factor: int = 4,
                align: bool = True, space: str = "w+", lpips_vgg16=None, lpips_lin=None, pixel_weight: float = 1.0,
                frame_every: int = 0, seed: int = 0, samples: int | None = None, spread: float | None = None,
                progress: bool = False, settings: dict | None = None,
                on_step: Callable[[int, float, float], None] | None = None) -> RestoreResult:
        """Degrade the photo with `degradation` (gray, mask, downsample, none or a chain like gray+mask;
        an input that is already degraded that way stays as it is), then find the face of the generator
        whose degraded version matches it. mask: a mask image path or PIL image (white = missing); rect:
        (x, y, w, h) in the photo's pixels. Distance: LPIPS when both weight files are given, else the
        model's discriminator features plus pixels. on_step(step, loss, distance) is called after every
        projection step (for progress reports; an exception raised in it stops the projection).
        samples > 1: that many independent projections; `restored` is built from their mean (closer
        to the truth on average, smoother) and `uncertainty` shows where they disagree; spread: how
        far from the start samples 2..K start (x W's RMS radius; see ProjectionSettings). steps,
        samples and spread default to the model card's (projection_defaults)."""
        defaults = self.projection_defaults(degradation)
        steps, samples = steps or defaults["steps"], samples or defaults["samples"]
        settings = {"spread": defaults["spread"] if spread is None else spread, **(settings or {})}
        size_wh = _image_size(image)
        hole = None
        if mask is not None:
            hole = hole_from_file(mask, size_wh)
        elif rect is not None:
            hole = hole_from_rect(tuple(int(v) for v in rect), size_wh)
        clean, hole = self.prepare(image, align, hole)
        op = build_degradation(degradation, self.resolution, hole_tensor(hole, self.resolution) if hole is not None else None, factor)
        distance = make_distance(self.D, self.resolution, lpips_vgg16, lpips_lin, pixel_weight).to(self.device)
        observed = op(clean.to(self.device))
        s = ProjectionSettings(steps=steps, space=space, frame_every=frame_every, seed=seed, samples=samples, **settings)
        init_ws = self.initial_ws(op, observed)
        with _progress_bar(steps, progress) as bar_step:
            result = project(self.G, observed, op, distance, s, on_step=_both(bar_step, on_step), init_ws=init_ws)
        observed_view = _show(observed.cpu(), self.resolution)
        frames = [(step, _side_by_side(observed_view, img)) for step, img in result.frames]
        several, observed = s.samples > 1, observed.cpu()
        # where the samples' restorations disagree: 0 where the photo decides (the known pixels of a mask)
        spread = torch.stack([op.composite(x, observed) for x in result.samples]).std(dim=0).mean(dim=1) if several else None
        return RestoreResult(restored=to_pil(op.composite(result.mean, observed))[0],
                             projection=to_pil(result.images)[0], observed=to_pil(observed_view)[0],
                             input=to_pil(clean)[0], w=result.ws[0].numpy(), losses=result.losses,
                             distances=result.distances,
                             distance=result.distance_name, degradation=op.name, frames=frames,
                             start="mean w" if init_ws is None else "encoder",
                             sample_ws=result.sample_ws[:, 0].numpy() if several else None,
                             uncertainty=_heatmap(spread[0]) if several else None)


def _both(*callbacks):
    """One on_step callback calling each given one (None when none is given)."""
    live = [c for c in callbacks if c is not None]
    if not live:
        return None

    def on_step(step: int, loss: float, distance: float) -> None:
        for callback in live:
            callback(step, loss, distance)
    return on_step


def _image_size(image) -> tuple[int, int]:
    if isinstance(image, Image.Image):
        return ImageOps.exif_transpose(image).size
    if isinstance(image, (str, Path)):
        return open_image(image).size
    arr = np.asarray(image)
    return arr.shape[1], arr.shape[0]


def _show(observed: torch.Tensor, size: int) -> torch.Tensor:
    """A low-resolution observation blown up with visible pixels, for viewing."""
    return observed if observed.shape[-1] == size else F.interpolate(observed, size=(size, size), mode="nearest")


def _heatmap(spread: torch.Tensor) -> Image.Image:
    """(H, W) per-pixel spread -> a colour map scaled to its own maximum (dark = the samples agree)."""
    from matplotlib import colormaps
    scaled = (spread / spread.max().clamp_min(1e-6)).cpu().numpy()
    return float_to_pil(colormaps["magma"](scaled)[..., :3].astype(np.float32))


def _side_by_side(left: torch.Tensor, right: torch.Tensor) -> Image.Image:
    return to_pil(torch.cat([left, right], dim=-1))[0]


class _progress_bar:
    """A rich progress bar showing the current loss (or nothing when disabled)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        self.bar = Progress(TextColumn("projecting"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("distance {task.fields[distance]:.4f}  loss {task.fields[loss]:.4g}"), TimeRemainingColumn(), transient=False)
        self.bar.__enter__()
        self.task = self.bar.add_task("projecting", total=self.total, loss=float("nan"), distance=float("nan"))
        return lambda step, loss, distance: self.bar.update(self.task, completed=step + 1, loss=loss, distance=distance)

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.__exit__(*exc)
        return False
