"""What to tell the user when experts are missing or damaged: the command that builds them.

The command is made from the buffer config's own fields (every field that defines the
buffer spelled out), so it builds exactly the buffer that was asked for whatever the
variant's defaults are; nothing here reads the config builders.
"""
from __future__ import annotations

from jaxdd import fingerprint
from jaxdd.experts.identity import _cfg_get

__all__ = ["build_command", "VARIANTS"]

# the variants of configs/buffer.py (jaxdd.config.BUFFER_VARIANTS; tests check they agree)
VARIANTS = ("digits", "cifar10", "cifar100", "imagenette")

# the buffer config's fields, in the order the command spells them; those in _OPTIONAL
# are left out when None (not every buffer config has them)
_FIELDS = ("dataset.name", "dataset.resolution", "dataset.zca", "dataset.zca_eps",
           "dataset.resize", "dataset.normalize", "dataset.stats", "dataset.data_dir",
           "model.name", "num_experts", "epochs", "lr_teacher", "batch_size", "dsa_strategy",
           "seed", "record_epochs", "experts_per_group")
_OPTIONAL = ("dataset.resize", "dataset.normalize", "dataset.stats", "dataset.data_dir")


def _variant(cfg) -> str:
    name = str(cfg.dataset.name).lower()
    name = name.split(":")[-1] if name.startswith("imagenet2012:") else name
    return _cfg_get(cfg, "variant") or (name if name in VARIANTS else "digits")


def build_command(cfg=None, buffer_dir=None) -> str:
    """The shell command that builds the buffer of ``cfg`` (a buffer ConfigDict), e.g.
    ``python launch/buffer.py --config=configs/buffer.py:cifar10,dataset.name=cifar10,...,
    num_experts=5,...,model.overrides.width=64 --buffer_dir=...``: the variant plus every
    field that defines the buffer, model overrides included. buffer_dir: default
    ``cfg.buffer_dir``; none -> the command's default directory."""
    variant = "<variant>"
    extra = []
    if cfg is not None:
        variant = _variant(cfg)
        mine = fingerprint.flatten(fingerprint.jsonable(
            cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)))
        for k in _FIELDS:
            if k not in mine or (k in _OPTIONAL and mine[k] is None):
                continue
            if k == "dataset.zca_eps" and not mine.get("dataset.zca"):
                continue  # without ZCA the eps is unused
            extra.append(f"{k}={mine[k]}")
        extra += [f"{k}={v}" for k, v in mine.items()
                  if k.startswith("model.overrides.") and v != {}]
        buffer_dir = buffer_dir or _cfg_get(cfg, "buffer_dir") or None
    cmd = f"python launch/buffer.py --config=configs/buffer.py:{','.join([variant] + extra)}"
    if buffer_dir:
        cmd += f" --buffer_dir={buffer_dir}"
    return cmd


def missing_message(buffer_dir, missing, found, hint, expected=None) -> str:
    n = len(missing)
    shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if n > 10 else "")
    if not hint:
        name = str(((expected or {}).get("dataset") or {}).get("name", "")).lower()
        variant = name if name in VARIANTS else "<variant>"
        hint = (f"python launch/buffer.py --config=configs/buffer.py:{variant} "
                f"--buffer_dir={buffer_dir}  (variants: {', '.join(VARIANTS)}; set other "
                f"fields in the config string, e.g. :{variant if name in VARIANTS else 'digits'}"
                f",num_experts=10)")
    return (f"{n} expert(s) missing or incomplete in {buffer_dir} (indices {shown}; "
            f"{found} complete found). Build them with:\n  {hint}")


def rebuild_hint(buffer_dir, hint=None) -> str:
    return hint or (f"python launch/buffer.py --config=configs/buffer.py:<variant> "
                    f"--buffer_dir={buffer_dir}")
