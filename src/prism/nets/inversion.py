"""An encoder into a trained StyleGAN2's W+ (the first half of "encode, then optimise" inversion,
as in-domain GAN inversion, Zhu et al. 2020, and pSp/e4e): degraded image + hole map -> one w
per synthesis layer. Trained through the frozen generator, it learns the w whose image best
matches the clean face on average given what the degradation left; the projector then starts
there instead of at the mean w.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from prism.registry import NETWORKS


@NETWORKS.register("stylegan_encoder")
class StyleEncoder(nn.Module):
    """(B, 3, R, R) image in [0, 1] + (B, 1, R, R) hole map (1 = unknown) -> (B, num_ws, w_dim).

    Strided convolutions down to R/16, then one linear layer to every w. The output is an offset
    from the generator's mean w in units of W's spread (buffers copied from G when the encoder
    is built for it); the last layer starts at zero, so an untrained encoder answers the mean w,
    exactly where the projector starts without one.
    """

    def __init__(self, resolution: int = 64, num_ws: int = 10, w_dim: int = 128,
                 channels: tuple[int, ...] = (32, 64, 128, 128, 256)):
        super().__init__()
        if resolution % 16:
            raise ValueError(f"resolution must be a multiple of 16, got {resolution}")
        self.resolution, self.num_ws, self.w_dim = resolution, num_ws, w_dim
        layers, cin = [nn.Conv2d(4, channels[0], 3, 1, 1), nn.LeakyReLU(0.2)], channels[0]
        for cout in channels[1:]:
            layers += [nn.Conv2d(cin, cout, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(cout, cout, 3, 1, 1), nn.LeakyReLU(0.2)]
            cin = cout
        self.body = nn.Sequential(*layers)
        side = resolution // 2 ** (len(channels) - 1)
        self.head = nn.Linear(cin * side * side, num_ws * w_dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.register_buffer("w_std", torch.ones(()))

    def set_w_statistics(self, w_avg: torch.Tensor, w_std: float) -> None:
        self.w_avg.copy_(w_avg.reshape(-1))
        self.w_std.fill_(float(w_std))

    def forward(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        x = torch.cat([(image * 2 - 1) * (1 - hole), hole], dim=1)
        offset = self.head(self.body(x).flatten(1)).view(-1, self.num_ws, self.w_dim)
        return self.w_avg + offset * self.w_std
