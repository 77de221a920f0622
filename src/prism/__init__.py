"""PRISM: GAN image-to-image translation. Public API: `load_model`, `train`, `evaluate`."""
__version__ = "0.1.0"


def load_model(name_or_path=None, device: str = "cpu", precision: str = "fp32"):
    """A bundled model's name, a saved model directory or a training run directory -> the
    task's predictor (e.g. a `Colorizer` with `.colorize(image)`). precision: fp32, bf16 (autocast,
    CPU or CUDA) or fp16 (CUDA)."""
    from prism.modelio import load_model as _load
    return _load(name_or_path, device=device, precision=precision)
