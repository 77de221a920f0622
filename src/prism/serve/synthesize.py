"""Semantic synthesis (OASIS) in the service: label maps in, photos of the same size out.

Uploads arrive decoded like photos (prism.data.images): an 8-bit single-channel PNG keeps its
values, so id maps (CamVid, Cityscapes labelIds, generic) come through exactly; palette PNGs
arrive as their palette colours and are read with the colour format.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from prism.data.images import DataError, LoadedImage
from prism.data.labels import read_label
from prism.serve.errors import ServeError
from prism.serve.tasks import TaskAdapter, register_task


class SynthesizeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # `lt` rather than `le`: a free number field in the web app, not a 4-billion-step slider
    seed: int = Field(0, ge=0, lt=2**32, description="Noise seed: different seeds, different photos of the same layout.")
    # a plain choice, not Optional: the web app shows it as a dropdown
    label_format: Literal["auto", "ids", "colour"] = Field(
        "auto", description="ids: single-channel class ids; colour: colour-coded maps matched to the model's "
                            "palette; auto: as the model's training data.")


def label_indices(image: LoadedImage, synth, decoding: str) -> np.ndarray:
    """A decoded upload -> (H, W) class indices of the model's table (LabelError if it does not fit)."""
    pixels = image.pixels
    if pixels.dtype != np.uint8:  # 16-bit maps arrive as floats in [0, 1]: back to their ids
        pixels = np.rint(pixels * 65535).astype(np.uint16)
    label, _ = read_label(Image.fromarray(pixels), synth.table, decoding, synth.tolerance, path="label map")
    return label


def run_synthesize(predictor, images, options: SynthesizeOptions):
    decoding = predictor.decoding if options.label_format == "auto" else options.label_format
    labels = []
    for i, image in enumerate(images):
        try:
            labels.append(label_indices(image, predictor, decoding))
        except DataError as e:  # the upload is an image, but not a label map of this model's classes
            raise ServeError(422, "invalid_label_map", f"image {i + 1}: {e}") from None
    return [predictor.synthesize(label, seed=options.seed) for label in labels]


SYNTHESIZE = register_task(TaskAdapter(
    name="oasis", title="Synthesize (OASIS)",
    description="Label maps in (class ids, or colours with label_format=colour), photos of the same size out.",
    options=SynthesizeOptions, run=run_synthesize, result_suffix="synthesized"))
