"""Known, differentiable degradation operators for restoration by GAN inversion.

The projector searches for a latent w whose image, *degraded the same way*, matches the degraded
input: loss = distance(degrade(G(w)), observed). So each operator must be differentiable and must
not need the clean image. Every operator also gives
- `baseline(observed)`: the trivial restoration the evaluation compares against, and
- `composite(generated, observed)`: the generator's image with everything the observation still
  knows put back (the known pixels, the lightness, the low frequencies).
Images are (B, 3, H, W) floats in [0, 1]; outputs keep 3 channels so any distance applies.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, what PIL's convert("L") uses for a gray photo


def luma(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


class Degradation:
    name = "none"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def baseline(self, observed: torch.Tensor, size: int) -> torch.Tensor:
        return _resize(observed, size)

    def composite(self, generated: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        return generated

    def encoder_input(self, observed: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """What an inversion encoder sees: the observation at the model's size and the map of
        unknown pixels (B, 1, size, size), all 0 unless pixels are missing."""
        image = _resize(observed, size)
        return image, image.new_zeros(image.shape[0], 1, size, size)

    def __repr__(self) -> str:
        return self.name


class Grayscale(Degradation):
    """Colour removed (colorization): 3 equal channels holding BT.601 luma."""
    name = "gray"

    def __call__(self, x):
        return luma(x).expand(-1, 3, -1, -1)

    def composite(self, generated, observed):
        # Adding the same offset to R, G and B shifts luma by exactly that offset (the weights sum
        # to 1) and leaves the chroma alone: the result has the input's lightness, G's colours.
        return (generated + luma(observed) - luma(generated)).clamp(0, 1)


class Mask(Degradation):
    """Pixels missing (inpainting): `hole` is (1, 1, H, W), 1 where the pixel is unknown (or
    (B, 1, H, W): one hole per image, as when an inversion encoder learns on random holes).
    Unknown pixels read 0 both in the observation and in the degraded generator image, so they
    add nothing to a pixel distance and the same dark patch to a feature distance."""
    name = "mask"

    def __init__(self, hole: torch.Tensor):
        if hole.dim() != 4 or hole.shape[1] != 1:
            raise ValueError(f"hole must be (1, 1, H, W) or (B, 1, H, W), got {tuple(hole.shape)}")
        self.hole = (hole > 0.5).float()

    def _hole(self, x: torch.Tensor) -> torch.Tensor:
        hole = self.hole.to(x.device, x.dtype)
        if hole.shape[-2:] != x.shape[-2:]:
            hole = (F.interpolate(hole, size=x.shape[-2:], mode="bilinear", align_corners=False) > 0.5).to(x.dtype)
        return hole

    def __call__(self, x):
        return x * (1 - self._hole(x))

    def baseline(self, observed, size):
        observed = _resize(observed, size)
        return diffusion_fill(observed, self._hole(observed))

    def encoder_input(self, observed, size):
        image = _resize(observed, size)
        return image, self._hole(image).expand(image.shape[0], -1, -1, -1)

    def composite(self, generated, observed):
        """G's content in the hole, blended seamlessly (Poisson-style): the colour mismatch along the
        hole's border is spread smoothly over the hole, so no seam shows where G meets the photo.
        Outside the hole the photo is kept exactly."""
        hole = self._hole(generated)
        observed = _resize(observed, generated.shape[-1])
        membrane = diffusion_fill(observed - generated, hole)
        return ((generated + membrane) * hole + observed * (1 - hole)).clamp(0, 1)


class Downsample(Degradation):
    """Resolution lost (super-resolution): antialiased area reduction by an integer factor."""
    name = "downsample"

    def __init__(self, factor: int = 4):
        if factor < 2:
            raise ValueError(f"downsample factor must be >= 2, got {factor}")
        self.factor = int(factor)

    def __call__(self, x):
        return F.avg_pool2d(x, self.factor)  # the exact box average, so the operator is known

    def composite(self, generated, observed):
        # One back-projection step: the observation's low frequencies, G's high frequencies, so
        # that downsampling the result gives back (about) the input.
        residual = observed - self(generated)  # signed: resized without _resize's clamping
        up = F.interpolate(residual, size=generated.shape[-2:], mode="bicubic", align_corners=False)
        return (generated + up).clamp(0, 1)


class Compose(Degradation):
    """Operators applied in order (e.g. gray then mask: a gray photo with a hole)."""

    def __init__(self, ops: list[Degradation]):
        self.ops = ops
        self.name = "+".join(op.name for op in ops)

    def __call__(self, x):
        for op in self.ops:
            x = op(x)
        return x

    def baseline(self, observed, size):
        for op in reversed(self.ops):
            observed = op.baseline(observed, size)
        return observed

    def composite(self, generated, observed):
        # Only the last operator's observation is at hand; the others would need the
        # intermediate images. Single operators get the full composite.
        return generated if len(self.ops) > 1 else self.ops[0].composite(generated, observed)

    def encoder_input(self, observed, size):
        image, hole = super().encoder_input(observed, size)
        for op in self.ops:  # the hole of a mask in the chain (e.g. gray+mask)
            if isinstance(op, Mask):
                hole = op.encoder_input(observed, size)[1]
        return image, hole


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def diffusion_fill(image: torch.Tensor, hole: torch.Tensor, iterations: int = 0) -> torch.Tensor:
    """Fill the hole by heat diffusion from its border (a Laplace solve by Jacobi iteration, on
    a coarse-to-fine pyramid so a big hole converges in few iterations). The inpainting
    baseline: smooth, plausible colours, no structure."""
    if not hole.any():
        return image
    h = image.shape[-1]
    if h > 8:  # solve at half resolution first, then refine: a good start for the Jacobi steps
        small_hole = (F.avg_pool2d(hole, 2) > 0.99).to(hole.dtype)
        coarse = diffusion_fill(F.avg_pool2d(image * (1 - hole), 2) / F.avg_pool2d(1 - hole, 2).clamp_min(1e-6),
                                small_hole, iterations)
        start = F.interpolate(coarse, size=image.shape[-2:], mode="bilinear", align_corners=False)
    else:
        known = (1 - hole).sum(dim=(2, 3), keepdim=True).clamp_min(1)  # per image when holes differ
        start = ((image * (1 - hole)).sum(dim=(2, 3), keepdim=True) / known).expand_as(image)
    x = image * (1 - hole) + start * hole
    kernel = torch.tensor([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], dtype=image.dtype, device=image.device)
    kernel = kernel.expand(image.shape[1], 1, 3, 3)
    for _ in range(iterations or 2 * h):
        avg = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=image.shape[1])
        x = image * (1 - hole) + avg * hole
    return x


# --- building operators from user input -----------------------------------------------------------------
DEGRADATIONS = ("gray", "mask", "downsample", "none")


def hole_from_rect(rect: tuple[int, int, int, int], image_size: tuple[int, int]) -> Image.Image:
    """A hole given as x, y, w, h in the input image's pixels -> an "L" mask of the image's size
    (255 = missing), to be aligned or cropped exactly like the image."""
    x, y, w, h = rect
    width, height = image_size
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(f"rectangle {x},{y},{w},{h} does not fit in the {width}x{height} image")
    hole = Image.new("L", image_size, 0)
    hole.paste(255, (x, y, x + w, y + h))
    return hole


def hole_from_file(path: str | Path | Image.Image, image_size: tuple[int, int]) -> Image.Image:
    """A mask image (a path, or an image already opened): white (or opaque, for images with alpha)
    marks the pixels to fill in. A mask of another size than the photo is stretched to it."""
    img, name = (path, "the mask") if isinstance(path, Image.Image) else (Image.open(path), path)
    gray = img.getchannel("A") if img.mode in ("RGBA", "LA") else img.convert("L")
    if gray.size != tuple(image_size):
        gray = gray.resize(image_size, Image.NEAREST)
    if max(np.asarray(gray).ravel(), default=0) <= 127:
        raise ValueError(f"{name}: the mask marks no pixel to fill (white = missing)")
    return gray


def hole_tensor(hole: Image.Image, size: int) -> torch.Tensor:
    """An "L" hole image (already in the model's frame) -> (1, 1, size, size) of 0/1."""
    arr = np.asarray(hole.convert("L").resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
    return torch.from_numpy((arr > 0.5).astype(np.float32))[None, None]


def build_degradation(spec: str, size: int, hole: torch.Tensor | None = None, factor: int = 4) -> Degradation:
    """'gray', 'mask', 'downsample', 'none' or a '+'/','-joined chain such as 'gray+mask'."""
    names = [n.strip() for n in spec.replace(",", "+").split("+") if n.strip()]
    unknown = [n for n in names if n not in DEGRADATIONS]
    if not names or unknown:
        raise ValueError(f"unknown degradation {spec!r}; use one of {', '.join(DEGRADATIONS)} or a chain like gray+mask")
    ops: list[Degradation] = []
    for name in names:
        if name == "gray":
            ops.append(Grayscale())
        elif name == "downsample":
            if size % factor:
                raise ValueError(f"downsample factor {factor} must divide the model's resolution {size}")
            ops.append(Downsample(factor))
        elif name == "mask":
            if hole is None:
                raise ValueError("the mask degradation needs a hole: a mask PNG (white = missing) or a rectangle x,y,w,h")
            ops.append(Mask(hole))
    if not ops:  # "none": plain projection (GAN inversion of a clean image)
        return Degradation()
    return ops[0] if len(ops) == 1 else Compose(ops)
