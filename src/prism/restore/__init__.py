"""Face restoration by StyleGAN2 inversion: degradations, projector, distances, alignment and
the predictor that `prism.load_model` returns for "stylegan" models."""
from prism.restore.api import FaceGenerator, RestoreResult

__all__ = ["FaceGenerator", "RestoreResult"]
