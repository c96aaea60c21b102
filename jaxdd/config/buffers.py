"""Expert-buffer configs: the recipe of configs/buffer.py (`buffer_config`), the buffer a
distillation config reads (`buffer_for`) and its default directory."""
from __future__ import annotations

import ml_collections

from jaxdd.config.base import DIGITS_BUFFER
from jaxdd.config.parse import parse_config_string
from jaxdd.published import mtt as _mtt

DSA = "color_crop_cutout_flip_scale_rotate"
BUFFER_VARIANTS = ("digits", "cifar10", "cifar100", "imagenette")


def _buffer_base() -> ml_collections.ConfigDict:
    from ml_collections import config_dict

    b = _mtt.BUFFER  # the MTT recipe (buffer.py defaults): SGD, no momentum / decay, DSA
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
    c.dataset.download = False  # let tfds download and prepare an absent dataset
    c.model = ml_collections.ConfigDict()
    c.model.name = "ConvNetD3"
    c.model.overrides = ml_collections.ConfigDict()
    c.num_experts = b["num_experts"]
    c.epochs = b["epochs"]
    c.lr_teacher = b["lr_teacher"]
    c.batch_size = b["batch_size"]
    c.dsa_strategy = DSA
    c.seed = 0
    c.record_epochs = config_dict.placeholder(int)  # None = every epoch
    c.experts_per_group = 10
    # '' = buffers/<dataset>-r<resolution>-<zca|nozca>-<model> (default_buffer_dir below,
    # the same directory the distill configs look in)
    c.buffer_dir = ""
    return c


def _buffer_variant(name: str) -> ml_collections.ConfigDict:
    c = _buffer_base()
    c.variant = name
    if name == "digits":
        c.dataset.name = "digits"
        c.dataset.resolution = 16
        c.model.name = "ConvNetD2W32"
        for k, v in DIGITS_BUFFER.items():  # the same buffer the digits TM configs read
            c[k] = v
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
                         f"available: {', '.join(BUFFER_VARIANTS)}")
    return c


def _set_buffer_field(c: ml_collections.ConfigDict, dotted: str, value) -> None:
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


def buffer_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The expert-buffer recipe (configs/buffer.py calls this): `arg` =
    '<variant>[,field=value,...]', variants digits (default), cifar10, cifar100, imagenette;
    dotted fields override nested ones (``model.overrides.width=64``)."""
    variant, overrides = parse_config_string(arg, "digits")
    c = _buffer_variant(variant)
    for k, v in overrides.items():
        _set_buffer_field(c, k, v)
    return c


def buffer_for(cfg) -> ml_collections.ConfigDict:
    """The expert-buffer config implied by a distillation config (cfg.buffer + its dataset,
    model and dsa_strategy); buffer_dir '' -> the default directory, made absolute."""
    import os

    b = ml_collections.ConfigDict(cfg.buffer.to_dict())
    b.dataset = ml_collections.ConfigDict(cfg.dataset.to_dict())
    b.model = ml_collections.ConfigDict(cfg.model.to_dict())
    if "dsa_strategy" not in b:
        b.dsa_strategy = cfg.dsa_strategy
    if not b.get("buffer_dir"):
        b.buffer_dir = default_buffer_dir(cfg.dataset, cfg.model.name)
    b.buffer_dir = os.path.abspath(os.path.expanduser(b.buffer_dir))  # Orbax needs absolute
    return b


def dataset_tag(d) -> str:
    """A file-name-safe tag of a dataset block: '<name>-r<resolution|native>-<zca|nozca>'.
    An npz file given by path becomes 'npz-<stem>-<first 8 hex digits of its content's
    sha256>' (data are identified by content: a moved file keeps its buffer; the buffer goes
    under buffers/, never next to the file); a file that does not exist (yet): a hash of its
    absolute path."""
    import hashlib
    import os

    from jaxdd import fingerprint

    name = str(d.get("name"))
    if name.lower().endswith(".npz"):
        full = os.path.abspath(os.path.expanduser(name))
        stem = os.path.splitext(os.path.basename(full))[0]
        digest = (fingerprint.file_sha256(full) if os.path.isfile(full)
                  else hashlib.sha1(full.encode()).hexdigest())
        name = f"npz-{stem}-{digest[:8]}"
    name = name.replace(os.sep, "_").replace(":", "_")
    return f"{name}-r{d.get('resolution') or 'native'}-{'zca' if d.get('zca') else 'nozca'}"


def default_buffer_dir(dataset, model_name) -> str:
    """buffers/<dataset_tag>-<model> (relative to the working directory)."""
    import os

    return os.path.join("buffers", f"{dataset_tag(dataset)}-{model_name}")
