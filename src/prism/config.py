"""YAML configs with `extends:` inheritance and dotted command-line overrides.

A config is a plain nested dict. Each task declares its defaults; a user's YAML is merged over
them and every key must already exist there (a typo is an error, not a silently ignored option),
except below keys listed in `FREE_FORM` (network keyword arguments vary by architecture). A network
spec naming a different `arch` than the default replaces it whole instead of merging its options.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    pass


FREE_FORM = {"nets"}  # sub-trees whose keys are architecture-specific


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    parent = data.pop("extends", None)
    if parent:
        base = load_yaml((path.parent / parent).resolve())
        data = merge(base, data, strict=False)
    return data


def merge(base: dict, update: dict, strict: bool = True, _where: str = "") -> dict:
    """Deep-merge `update` into a copy of `base`. With strict, unknown keys raise ConfigError."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        where = f"{_where}.{key}" if _where else key
        if strict and key not in out and not _free(_where):
            known = ", ".join(sorted(out)) or "(none)"
            raise ConfigError(f"unknown config key '{where}'; known keys here: {known}")
        replaced_arch = isinstance(value, dict) and isinstance(out.get(key), dict) and \
            "arch" in value and value["arch"] != out[key].get("arch")
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not replaced_arch:
            out[key] = merge(out[key], value, strict, where)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _free(where: str) -> bool:
    return any(where == k or where.startswith(k + ".") for k in FREE_FORM)


def parse_overrides(items: list[str]) -> dict:
    """['train.steps=2000', 'nets.G.depth=7'] -> nested dict; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like section.key=value")
        dotted, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else None
        node = out
        parts = dotted.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def get(cfg: dict, dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def dump(cfg: dict, path: str | Path) -> None:
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
