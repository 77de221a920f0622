"""Name -> class registries. Tasks and networks register themselves; configs and model cards
refer to them by name, so a saved model rebuilds itself without repeating architecture flags."""
from __future__ import annotations

from typing import Callable


class Registry(dict):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable:
        def deco(obj):
            if name in self:
                raise KeyError(f"{self.kind} '{name}' registered twice")
            self[name] = obj
            return obj
        return deco

    def get_or_raise(self, name: str):
        if name not in self:
            raise KeyError(f"unknown {self.kind} '{name}'; available: {', '.join(sorted(self))}")
        return self[name]


NETWORKS = Registry("network")
TASKS = Registry("task")


def build_network(spec: dict):
    """spec = {"arch": "unet", **kwargs} -> nn.Module. The spec is stored in model cards."""
    import prism.nets  # noqa: F401  (registers the networks)
    spec = dict(spec)
    if "arch" not in spec:  # e.g. an override like nets.D.width=8 on a config whose D is null
        from prism.config import ConfigError
        raise ConfigError(f"network spec {spec} has no 'arch': name the architecture (e.g. arch: unet)")
    arch = spec.pop("arch")
    return NETWORKS.get_or_raise(arch)(**spec)
