"""The README table of published settings, rendered from the configs themselves.

The library never runs configs/ by path: launch/settings_table.py loads each config file,
builds the ConfigDict of every entry of its ``VARIANTS`` (convention: jaxdd.published) and
hands them to `rows` / `markdown` here. Fields are read generically, so a config only needs
the standard layout of jaxdd.config.base_config (objective, opt.syn, opt.lr, dataset,
param.ipc, iterations, source).
"""
from __future__ import annotations

from typing import Iterable

# Image shape (H, W, C) the configs train at, for the storage budget IPC x classes x H x W x C
# (digits is trained upsampled to 16x16 by its configs; imagenette at 128x128).
SHAPES = {"digits": (16, 16, 1), "mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1),
          "svhn_cropped": (32, 32, 3), "cifar10": (32, 32, 3), "cifar100": (32, 32, 3),
          "imagenette": (128, 128, 3), "tinyimagenet": (64, 64, 3)}
CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "svhn_cropped": 10,
           "cifar10": 10, "cifar100": 100, "imagenette": 10, "tinyimagenet": 200}

COLUMNS = (("method", "method"), ("dataset", "dataset"), ("ipc", "IPC"), ("model", "net"),
           ("syn_steps", "syn_steps"), ("expert_epochs", "expert_epochs"),
           ("max_start", "max_start"), ("lr_syn", "lr (synthetic params)"),
           ("lr_lr", "lr_lr"), ("lr_init", "syn_lr init / eval lr"), ("zca", "ZCA"),
           ("batch_syn", "batch_syn"), ("iterations", "iterations"),
           ("budget", "budget (floats)"), ("source", "source"))


def _num(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


def _resolution_shape(dataset: str, resolution) -> tuple | None:
    shape = SHAPES.get(dataset)
    if shape is None:
        return None
    if resolution:
        return (int(resolution), int(resolution), shape[2])
    return shape


def row(method: str, cfg) -> dict:
    """One table row from a config (fields absent from the config show as '-')."""
    o, ds = cfg.objective, cfg.dataset
    tm = o.get("name") == "tm"
    ipc = int(cfg.param.ipc)
    # 'imagenet2012:imagenette' (the papers' ImageNette) has imagenette's shape and classes
    name = ds.name.split(":", 1)[1] if ds.name.startswith("imagenet2012:") else ds.name
    shape = _resolution_shape(name, ds.get("resolution"))
    budget = (ipc * CLASSES[name] * shape[0] * shape[1] * shape[2]
              if shape is not None and name in CLASSES else None)
    syn = cfg.opt.syn
    batch_syn = o.get("batch_syn", None) if tm else None
    return {
        "method": method, "dataset": ds.name, "ipc": ipc, "model": cfg.model.get("name"),
        "syn_steps": o.get("syn_steps") if tm else None,
        "expert_epochs": o.get("expert_epochs") if tm else None,
        "max_start": o.get("max_start_epoch") if tm else None,
        "lr_syn": f"{syn.get('name', 'sgd')} {_num(float(syn.lr))}"
                  + (f" (m {_num(float(syn.momentum))})" if syn.get("momentum") else ""),
        "lr_lr": float(cfg.opt.lr.lr) if tm else None,
        "lr_init": float(cfg.opt.lr.init),
        "zca": bool(ds.get("zca", False)),
        "batch_syn": ("all" if not batch_syn else int(batch_syn)) if tm else None,
        "iterations": int(cfg.iterations),
        "budget": budget,
        "source": cfg.get("source", ""),
    }


def rows(configs: Iterable) -> list[dict]:
    """[(method, cfg)] -> rows sorted by method, dataset, ipc."""
    out = [row(m, c) for m, c in configs]
    return sorted(out, key=lambda r: (r["method"], r["dataset"], r["ipc"]))


def markdown(table_rows: list[dict]) -> str:
    """A GitHub markdown table of the rows (one line per row, '-' for absent fields)."""
    head = "| " + " | ".join(h for _, h in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [head, sep]
    for r in table_rows:
        lines.append("| " + " | ".join(_num(r[k]).replace("|", "/") for k, _ in COLUMNS)
                     + " |")
    return "\n".join(lines) + "\n"
