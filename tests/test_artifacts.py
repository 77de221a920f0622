"""The checkerboard and stripe indices: a photo with a 4-px grid or with column stripes added
must score far higher than the photo itself; other structure must not trigger the wrong index."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from prism.artifacts import artifact_indices, checkerboard_index, stripe_index
from tests.conftest import sample_photos


def _photo(i: int) -> torch.Tensor:
    return torch.from_numpy(sample_photos()[i][:256, :256].copy()).permute(2, 0, 1).float() / 255


def _grid(period: int, size: int = 256, amplitude: float = 0.03) -> torch.Tensor:
    y, x = np.mgrid[0:size, 0:size]
    pattern = ((y % period) < period // 2) ^ ((x % period) < period // 2)
    return torch.from_numpy(pattern.astype(np.float32) * amplitude)


@pytest.mark.parametrize("i", [0, 1, 2])  # astronaut, coffee, chelsea (the rocket's lattice tower is periodic)
def test_a_grid_scores_far_higher_than_the_photo(i):
    photo = _photo(i)
    gridded = (photo + _grid(4)).clamp(0, 1)
    assert checkerboard_index(photo) < 10
    assert checkerboard_index(gridded) > 10 * checkerboard_index(photo)
    assert checkerboard_index((photo + _grid(8)).clamp(0, 1)) > 5 * checkerboard_index(photo)


@pytest.mark.parametrize("i", [1, 2, 3])
def test_column_stripes_score_far_higher_than_the_photo(i):
    photo = _photo(i)
    rng = np.random.default_rng(i)
    stripes = torch.from_numpy(rng.normal(0, 0.03, 256).astype(np.float32))[None, None, :]  # varies along x only
    striped = (photo + stripes).clamp(0, 1)
    assert stripe_index(striped) > 3 * stripe_index(photo)
    rows = (photo + stripes.transpose(1, 2)).clamp(0, 1)  # row stripes: the other axis
    assert stripe_index(rows) > 3 * stripe_index(photo)


def test_plain_noise_triggers_neither():
    noise = torch.rand(3, 128, 128)
    assert checkerboard_index(noise) < 5 and stripe_index(noise) < 1.5
    out = artifact_indices([noise, noise])
    assert out["count"] == 2 and out["checkerboard"] == pytest.approx(checkerboard_index(noise))
