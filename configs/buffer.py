"""Expert buffers (trajectories for trajectory matching): `python launch/buffer.py`.

Variants (config string after ':'; extra `field=value` pairs override, dotted for nested
fields, e.g. `configs/buffer.py:cifar10,num_experts=10,model.name=ConvNetD3W32`; absl's
`--config.<field>=...` flags work too):

  digits (default)  embedded sklearn digits at 16x16x1, ConvNetD2W32, 8 experts x 15
                    epochs, SGD lr 0.01, batch 256, DSA on (the MTT recipe; the same buffer
                    the digits tm_* configs use). Offline; a CPU demo:
                      python launch/buffer.py --config=configs/buffer.py:digits
                    -> buffers/digits-r16-nozca-ConvNetD2W32 (7.4 MB). About 1 minute on
                    2 idle CPU cores: measured 75 s of CPU time (user + sys), 188 s wall
                    while other jobs loaded the 2 cores (2026-11-21). The 8 experts train
                    together in one vmapped group; test accuracy 91.2 +- 1.3 % (33 % after
                    epoch 1, 70 % after epoch 3: a trajectory worth matching).
  cifar10           the MTT buffer: ConvNetD3, 100 experts x 50 epochs, SGD lr 0.01, batch
                    256, ZCA (eps 0.1), DSA on, native 32x32 (resolution None, as in the
                    tm_* configs; IPC 50 TM uses a no-ZCA buffer: add ,dataset.zca=False).
                    Experts reach ~77-79 % (MTT reports this).
                      python launch/buffer.py --config=configs/buffer.py:cifar10
                    Needs tfds cifar10 prepared (see README). GPU recommended (hours on CPU).
  cifar100          same recipe on CIFAR-100 (ZCA), ConvNetD3.
  imagenette        the papers' ImageNette (ImageNet-1k subset via tfds imagenet2012, squashed to
                    128x128), ConvNetD5, no ZCA, 100 experts x 50 epochs.

Storage: one Orbax checkpoint per expert, `<buffer_dir>/expert_<i:05d>` (1.28 MB raw per
ConvNetD3 CIFAR snapshot; 51 snapshots = 61 MB on disk with Orbax's zstd, measured by
launch/bench_experts.py; the PyTorch buffer takes 65 MB). Re-running the command resumes:
complete experts are skipped. Only snapshots 0..record_epochs are stored (None = all);
TM reads epochs 0..max_start_epoch + expert_epochs.
"""
from __future__ import annotations

import ast

import ml_collections
from ml_collections import config_dict

DSA = "color_crop_cutout_flip_scale_rotate"


def _base() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.variant = "digits"
    c.dataset = ml_collections.ConfigDict()
    c.dataset.name = "digits"
    c.dataset.resolution = config_dict.placeholder(int)
    c.dataset.zca = False
    c.dataset.zca_eps = 0.1
    # variable-size sources (imagenette, imagenet2012:<subset>): 'squash' (None, the
    # authors' Resize((R, R))) or 'crop'; see jaxdd.data.load_dataset
    c.dataset.resize = config_dict.placeholder(str)
    c.dataset.data_dir = config_dict.placeholder(str)
    c.model = ml_collections.ConfigDict()
    c.model.name = "ConvNetD3"
    c.model.overrides = ml_collections.ConfigDict()
    c.num_experts = 100
    c.epochs = 50
    c.lr_teacher = 0.01
    c.batch_size = 256
    c.dsa_strategy = DSA
    c.seed = 0
    c.record_epochs = config_dict.placeholder(int)  # None = every epoch
    c.experts_per_group = 10
    # '' = buffers/<dataset>-r<resolution>-<zca|nozca>-<model> (jaxdd.experts.default_buffer_dir,
    # the same directory the distill configs look in)
    c.buffer_dir = ""
    return c


def _variant(name: str) -> ml_collections.ConfigDict:
    c = _base()
    c.variant = name
    if name == "digits":
        c.dataset.name = "digits"
        c.dataset.resolution = 16
        c.model.name = "ConvNetD2W32"
        c.num_experts = 8
        c.epochs = 15
        c.experts_per_group = 8
    elif name in ("cifar10", "cifar100"):
        c.dataset.name = name
        c.dataset.resolution = None  # native 32x32 (the tm_* configs use None too)
        c.dataset.zca = True
        c.model.name = "ConvNetD3"
    elif name == "imagenette":
        # the papers' ImageNette (ImageNet-1k subset, squashed); fast.ai's tfds data:
        # --config.dataset.name=imagenette
        c.dataset.name = "imagenet2012:imagenette"
        c.dataset.resolution = 128
        c.model.name = "ConvNetD5"
        c.experts_per_group = 4
    else:
        raise ValueError(f"unknown buffer config variant {name!r}; "
                         f"available: digits, cifar10, cifar100, imagenette")
    return c


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _set(c: ml_collections.ConfigDict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    node = c
    for p in parents:
        node = node[p]
    if leaf in node and isinstance(node[leaf], ml_collections.ConfigDict):
        raise ValueError(f"cannot override the group {dotted!r} with a value")
    if dotted.startswith("model.overrides."):
        with node.unlocked():
            node[leaf] = value
    else:
        if leaf not in node:
            raise KeyError(f"unknown buffer config field {dotted!r}")
        node[leaf] = value


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """`arg` = '<variant>[,field=value,...]' (default variant 'digits')."""
    parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
    variant = "digits"
    if parts and "=" not in parts[0]:
        variant = parts.pop(0)
    c = _variant(variant)
    for p in parts:
        if "=" not in p:
            raise ValueError(f"expected field=value in config string, got {p!r}")
        k, v = p.split("=", 1)
        _set(c, k.strip(), _parse_value(v.strip()))
    return c
