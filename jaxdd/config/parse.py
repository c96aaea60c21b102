"""Config strings and overrides: the one parser of `configs/x.py:<variant>,field=value,...`,
the overrides it yields, the --config.model.overrides.* flags, and the default workdir."""
from __future__ import annotations

import ast

from jaxdd.config.datasets import DATASETS, MODAL_DATASETS, is_npz, known_names


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_config_string(arg: str | None, default_variant: str | None = None):
    """THE config-string parser: 'cifar10,ipc=10,model.name=X' -> ('cifar10', {'ipc': 10,
    'model.name': 'X'}). The bare token (at most one) names the variant (``default_variant``
    when absent); values are Python literals when they parse, else strings."""
    variant, overrides = default_variant, {}
    bare = []
    for tok in (arg or "").split(","):
        tok = tok.strip()
        if not tok:
            continue
        if "=" in tok:
            k, v = tok.split("=", 1)
            overrides[k.strip()] = _literal(v.strip())
        else:
            bare.append(tok)
    if len(bare) > 1:
        raise ValueError(f"config string {arg!r} names more than one variant ({bare}); "
                         "give one variant and field=value pairs")
    if bare:
        variant = bare[0]
    return variant, overrides


def parse_arg(arg: str | None, default_dataset="digits"):
    """'cifar10,ipc=10' -> ('cifar10', {'ipc': 10}); '' or None -> default dataset. The
    dataset is a name of DATASETS / MODAL_DATASETS or a path ending in '.npz'."""
    dataset, overrides = parse_config_string(arg, default_dataset)
    if dataset not in DATASETS and dataset not in MODAL_DATASETS and not is_npz(dataset):
        raise ValueError(f"unknown dataset variant {dataset!r}; choose from {known_names()} "
                         "or give a path ending in '.npz'")
    return dataset, overrides


def apply_overrides(cfg, overrides: dict):
    """Apply 'a.b=value' style overrides from the config string (plain names: param.ipc
    for 'ipc', else searched at top level)."""
    for k, v in overrides.items():
        if k == "ipc":
            cfg.param.ipc = v
            continue
        node, parts = cfg, k.split(".")
        for p in parts[:-1]:
            node = node[p]
        if k.startswith("model.overrides.") and len(parts) == 3:
            with node.unlocked():  # any keyword of the network (jaxdd.models.get_model)
                node[parts[-1]] = v
            continue
        if parts[-1] not in node:
            raise ValueError(f"config has no field {k!r}")
        node[parts[-1]] = v
    return cfg


_MODEL_OVERRIDE_FLAG = "--config.model.overrides."


def pop_model_override_flags(argv):
    """Split ``--config.model.overrides.<name>=<value>`` flags off a command line.

    absl's config flags only override fields that exist, and ``model.overrides`` starts
    empty, so launch/ scripts take these flags out before absl parses the rest and apply
    them with `apply_model_overrides`. -> (remaining argv, {name: value}) (values are Python
    literals when they parse, else strings, as in config strings)."""
    rest, found = [], {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith(_MODEL_OVERRIDE_FLAG):
            name, eq, value = a[len(_MODEL_OVERRIDE_FLAG):].partition("=")
            if not eq:  # --flag value
                if i + 1 >= len(argv):
                    raise ValueError(f"{a} needs a value")
                value = argv[i + 1]
                i += 1
            found[name] = _literal(value)
        else:
            rest.append(a)
        i += 1
    return rest, found


def apply_model_overrides(cfg, overrides: dict):
    """Set cfg.model.overrides.<name> = value for every item (see pop_model_override_flags)."""
    if overrides:
        with cfg.model.overrides.unlocked():
            for k, v in overrides.items():
                cfg.model.overrides[k] = v
    return cfg


_NAME_MAX = 96  # characters of a default workdir's name (filesystems allow 255 bytes)


def default_workdir(config_flag_value: str) -> str:
    """workdirs/<config name>-<variant> for a --config value ('configs/tm_ddif.py:cifar10,
    ipc=10' -> workdirs/tm_ddif-cifar10_ipc10; no variant -> '-default'; path separators of an
    npz variant become '_').

    Always ONE directory under workdirs/, whatever the string: only [A-Za-z0-9._=-] are
    kept (others become '_'), runs of dots become '_' (no '..'), and a name longer than
    _NAME_MAX characters is cut and ends with 8 hex digits of its sha256 (two long strings
    that differ after the cut get different names)."""
    import hashlib
    import os
    import re

    path, _, variant = config_flag_value.partition(":")
    name = os.path.splitext(os.path.basename(path.replace("\\", "/")))[0]
    tag = variant.replace(",", "_").replace("=", "") if variant else "default"
    full = f"{name}-{tag}"
    safe = re.sub(r"[^A-Za-z0-9._=-]", "_", full)
    safe = re.sub(r"\.{2,}", "_", safe)
    if safe.startswith("."):
        safe = "_" + safe[1:]
    if len(safe) > _NAME_MAX:
        digest = hashlib.sha256(full.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        safe = f"{safe[:_NAME_MAX - 9]}-{digest}"
    return os.path.join("workdirs", safe)
