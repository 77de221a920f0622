"""GAN inversion under a known degradation (after stylegan2's projector, Karras et al. 2020, 5.3).

Finds the latent w (one w for every layer, "W", or one per layer, "W+") and the per-layer noise
maps whose image, degraded, is closest to the degraded observation:

    min_{w, n}  distance(degrade(G(w, n)), observed) + lambda_noise * sum_scales autocorr(n)^2

- Starts at the mean w of many mapped z: the most typical image, inside the learned manifold.
- Adam with a learning rate that ramps up over the first 5 % of the steps (Adam's early steps are
  large) and down by a half cosine over the last 25 % (to settle).
- Gaussian noise on w, from 5 % of the std of W to 0 over the first 75 %: early exploration,
  like an annealed random search, so the result does not depend on small wiggles of the loss.
- The noise maps would otherwise learn to paint the target (they have a pixel's freedom each):
  their autocorrelation at 1-pixel shifts is penalised at every scale of a pyramid, and each
  map is renormalised to zero mean and unit variance after every step.
Batches project every image independently (Adam is element-wise; losses are summed).

`samples` > 1 runs that many independent projections per image (same observation, different
starting noise), batched together. Where the observation leaves the answer open (the hole of an
inpainting, the colours of a gray photo) they disagree; their mean is the estimate with the least
expected squared error (what PSNR rewards), their spread shows where the answer is a guess.
`spread` > 0 starts every sample but the first at a random offset from the start (Gaussian, that
many times W's RMS radius): the samples then cover a neighbourhood of latents that fit the
observation about as well, and their mean approaches the posterior mean rather than one mode's
(measured on held-out faces, from the mean w and from an inversion encoder's guess: docs/restore.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass
class ProjectionSettings:
    steps: int = 300
    space: str = "w+"                 # w | w+
    lr: float = 0.1
    lr_rampup: float = 0.05           # fractions of the steps
    lr_rampdown: float = 0.25
    initial_noise_factor: float = 0.05
    noise_ramp: float = 0.75
    noise_regularize: float = 1e5
    optimize_noise: bool = True
    w_avg_samples: int = 10000
    frame_every: int = 0              # keep G's image every N steps (0 = none)
    seed: int = 0
    samples: int = 1                  # independent projections per image (their mean is the estimate)
    spread: float = 0.0               # samples after the first start this far from the start (x W's RMS radius)

    def __post_init__(self):
        if self.space not in ("w", "w+"):
            raise ValueError(f"space must be w or w+, got {self.space!r}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.spread < 0:
            raise ValueError(f"spread must be >= 0, got {self.spread}")


@dataclass
class Projection:
    sample_ws: torch.Tensor           # (K, B, num_ws, w_dim): the projected latents, K samples per image
    samples: torch.Tensor             # (K, B, 3, H, W) in [0, 1]: G(ws) with the optimised noise
    losses: list[float]               # total loss per step, mean over the batch and samples
    distances: list[float]            # the distance part alone, per step
    frames: list[tuple[int, torch.Tensor]] = field(default_factory=list)  # (step, mean image)
    distance_name: str = ""

    @property
    def ws(self) -> torch.Tensor:
        """(B, num_ws, w_dim): the first sample's latents."""
        return self.sample_ws[0]

    @property
    def images(self) -> torch.Tensor:
        """(B, 3, H, W): the first sample's image, G(w) itself."""
        return self.samples[0]

    @property
    def mean(self) -> torch.Tensor:
        """(B, 3, H, W): the mean over samples, the least-squared-error estimate."""
        return self.samples.mean(dim=0)


CARD_SETTINGS = ("steps", "samples", "spread")  # what a model card's `restore` options may set


def card_fallbacks() -> dict:
    """The settings a model card leaves unsaid: ProjectionSettings' own defaults."""
    return {name: getattr(ProjectionSettings, name) for name in CARD_SETTINGS}


def w_statistics(G, samples: int = 10000, seed: int = 0) -> tuple[torch.Tensor, float]:
    """Mean w (1, w_dim) and the root-mean-square distance from it, over `samples` mapped z."""
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, G.z_dim, generator=gen).to(device)
    with torch.no_grad():
        w = torch.cat([G.mapping(chunk, update_w_avg=False)[:, 0] for chunk in z.split(2048)])
    w_avg = w.mean(dim=0, keepdim=True)
    return w_avg, float(((w - w_avg).square().sum() / samples).sqrt())


def noise_regularization(noises: list[torch.Tensor]) -> torch.Tensor:
    """Sum over maps and pyramid levels (down to 8x8) of the squared autocorrelation at a
    1-pixel shift, horizontally and vertically: 0 for white noise, large for painted structure."""
    total = 0
    for n in noises:
        while True:
            total = total + (n * n.roll(1, dims=3)).mean(dim=(1, 2, 3)).square() \
                          + (n * n.roll(1, dims=2)).mean(dim=(1, 2, 3)).square()
            if n.shape[-1] <= 8:
                break
            n = F.avg_pool2d(n, 2)
    return total


def learning_rate(step: int, settings: ProjectionSettings) -> float:
    t = step / settings.steps
    ramp = min(1.0, (1.0 - t) / settings.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp *= min(1.0, t / settings.lr_rampup) if settings.lr_rampup > 0 else 1.0
    return settings.lr * ramp


def project(G, observed: torch.Tensor, degradation, distance, settings: ProjectionSettings | None = None,
            on_step: Callable[[int, float, float], None] | None = None, init_ws: torch.Tensor | None = None) -> Projection:
    """observed: (B, 3, h, w) degraded images in [0, 1]; `degradation` maps G's [0, 1] image to the
    same space. G is put in eval mode and left untouched. on_step(step, loss, distance).
    init_ws: (B, num_ws, w_dim) starting latents (an encoder's guess) instead of the mean w."""
    s = settings or ProjectionSettings()
    device = observed.device
    G = G.eval()
    params = list(G.parameters())
    grad_flags = [p.requires_grad for p in params]
    G.requires_grad_(False)
    b = observed.shape[0]
    try:  # K samples: the batch tiled K times; each item gets its own w noise and noise maps
        p = _optimize(G, observed.repeat(s.samples, 1, 1, 1), degradation, distance, s, on_step, device,
                      None if init_ws is None else init_ws.to(device).repeat(s.samples, 1, 1), first_sample=b)
    finally:
        for param, flag in zip(params, grad_flags):
            param.requires_grad_(flag)
    k = s.samples
    p.sample_ws, p.samples = p.sample_ws.reshape(k, b, *p.sample_ws.shape[1:]), p.samples.reshape(k, b, *p.samples.shape[1:])
    p.frames = [(step, img.reshape(k, b, *img.shape[1:]).mean(dim=0)) for step, img in p.frames]
    return p


def _optimize(G, observed, degradation, distance, s: ProjectionSettings, on_step, device, init_ws=None,
              first_sample: int = 0) -> Projection:
    """first_sample: how many batch items make up the first sample (they start exactly at the start)."""
    b = observed.shape[0]
    gen = torch.Generator().manual_seed(s.seed)  # own RNG: the result depends on the seed alone
    w_avg, w_std = w_statistics(G, s.w_avg_samples, s.seed)
    layers = G.num_ws if s.space == "w+" else 1
    if init_ws is None:
        w_opt = w_avg.reshape(1, 1, -1).repeat(b, layers, 1).clone().requires_grad_(True)
    else:
        w_opt = (init_ws if layers > 1 else init_ws.mean(dim=1, keepdim=True)).to(w_avg.dtype).clone().requires_grad_(True)
    noises = [torch.randn((b,) + shape[1:], generator=gen).to(device).requires_grad_(s.optimize_noise)
              for shape in G.noise_shapes()]
    if s.spread > 0:  # drawn after the noise maps, so spread 0 leaves every other draw as it was
        offsets = torch.randn((b, 1, w_opt.shape[-1]), generator=gen).to(device) * (s.spread * w_std / w_opt.shape[-1] ** 0.5)
        offsets[:first_sample] = 0
        with torch.no_grad():
            w_opt += offsets.to(w_opt.dtype)
    optimizer = torch.optim.Adam([w_opt] + (noises if s.optimize_noise else []), betas=(0.9, 0.999), lr=s.lr)
    target = distance.prepare(observed)

    losses, distances, frames = [], [], []
    for step in range(s.steps):
        t = step / s.steps
        noise_scale = w_std * s.initial_noise_factor * max(0.0, 1.0 - t / s.noise_ramp) ** 2
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, s)
        w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * noise_scale
        ws = (w_opt + w_noise).expand(-1, G.num_ws, -1) if layers == 1 else w_opt + w_noise
        images = (G.synthesis(ws, noises=noises) + 1) / 2
        dist = distance(degradation(images), target)
        reg = noise_regularization(noises) if s.optimize_noise else torch.zeros_like(dist)
        loss = (dist + s.noise_regularize * reg).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # white noise again: zero mean, unit variance per map
            for n in noises:
                n -= n.mean(dim=(1, 2, 3), keepdim=True)
                n *= n.square().mean(dim=(1, 2, 3), keepdim=True).rsqrt()
        losses.append(float(loss.detach()) / b)
        distances.append(float(dist.detach().mean()))
        if s.frame_every and step % s.frame_every == 0:
            frames.append((step, images.detach().clamp(0, 1).cpu()))
        if on_step:
            on_step(step, losses[-1], distances[-1])

    with torch.no_grad():
        ws = w_opt.detach().expand(-1, G.num_ws, -1) if layers == 1 else w_opt.detach()
        final = ((G.synthesis(ws, noises=[n.detach() for n in noises]) + 1) / 2).clamp(0, 1)
    if s.frame_every:
        frames.append((s.steps, final.cpu()))
    return Projection(ws.clone().cpu(), final.cpu(), losses, distances, frames, getattr(distance, "name", ""))
