"""Tasks register by name; importing this package imports them all."""
from __future__ import annotations

from pathlib import Path

from prism import config as C
from prism.registry import TASKS
from prism.tasks.base import TRAINER_DEFAULTS, Phase, Task  # noqa: F401
from prism.tasks import colorize  # noqa: F401  (registers "colorize")
from prism.tasks import pix2pix, cyclegan  # noqa: F401,E402  (register "pix2pix", "cyclegan")
from prism.tasks import stylegan, stylegan_encoder  # noqa: F401,E402  (register "stylegan", "stylegan_encoder")
from prism.tasks import oasis  # noqa: F401,E402  (registers "oasis")
from prism.tasks import segment  # noqa: F401,E402  (registers "segment")


def task_class(name: str) -> type[Task]:
    return TASKS.get_or_raise(name)


def resolve_config(path: str | Path | None = None, overrides: list[str] | dict | None = None,
                   base: dict | None = None) -> dict:
    """Task defaults <- YAML file (or `base`, e.g. a resumed run's config) <- dotted overrides.

    Every key must exist in the defaults, so a typo is reported instead of silently ignored.
    """
    user = C.load_yaml(path) if path else dict(base or {})
    if isinstance(overrides, list):
        overrides = C.parse_overrides(overrides)
    overrides = overrides or {}
    task = overrides.get("task") or user.get("task")
    if not task:
        raise C.ConfigError(f"{path or 'config'}: missing 'task' (one of: {', '.join(sorted(TASKS))})")
    defaults = C.merge(TRAINER_DEFAULTS, task_class(task).defaults, strict=False)
    cfg = C.merge(defaults, user)
    cfg = C.merge(cfg, overrides)
    cfg["task"] = task
    if not cfg.get("name"):
        cfg["name"] = Path(path).stem if path else task
    return cfg
