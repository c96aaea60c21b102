"""Config strings and overrides: the one parser of `configs/x.py:<variant>,field=value,...`,
the overrides it yields, the --config.* flags (every field checked, with a "did you mean"),
and the default workdir."""
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


def _keys(node):
    try:
        return [str(k) for k in node.keys()]
    except (AttributeError, TypeError):
        return []


def _all_paths(node, prefix=""):
    out = []
    for k in _keys(node):
        v = node[k]
        out.append(prefix + k)
        if hasattr(v, "keys") and k != "overrides":
            out += _all_paths(v, prefix + k + ".")
    return out


def field_problem(cfg, dotted: str):
    """None when `dotted` names a field of `cfg`, else one line: "unknown config field
    'itrations'; did you mean 'iterations'?" (difflib over every dotted path of the config,
    then over the names of the block it stops in, which are listed when nothing is close)."""
    import difflib

    node, parts = cfg, dotted.split(".")
    for i, p in enumerate(parts):
        if not hasattr(node, "keys"):
            return (f"config field {'.'.join(parts[:i])!r} is a value ({node!r}), not a "
                    f"block: {dotted!r} does not exist")
        if p in _keys(node):
            node = node[p]
            continue
        where = ".".join(parts[:i])
        same_depth = [q for q in _all_paths(cfg) if q.count(".") == dotted.count(".")]
        close = difflib.get_close_matches(dotted, same_depth, n=3, cutoff=0.75)
        if not close:  # the name of this level, with the rest of the path when it exists
            tail = ".".join(parts[i + 1:])
            close = [(where + "." if where else "") + c for c in
                     difflib.get_close_matches(p, _keys(node), n=3, cutoff=0.6)]
            close = [c + "." + tail if tail and field_problem(cfg, c + "." + tail) is None
                     else c for c in close]
        if close:
            return (f"unknown config field {dotted!r}; did you mean "
                    f"{' or '.join(repr(c) for c in close)}?")
        block = f"block {where!r}" if where else "the config"
        return (f"unknown config field {dotted!r}; {block} has: "
                f"{', '.join(sorted(_keys(node)))}")
    return None


def apply_overrides(cfg, overrides: dict):
    """Apply 'a.b=value' style overrides from the config string (plain names: param.ipc
    for 'ipc', else searched at top level). An unknown field raises ValueError with a
    "did you mean" (`field_problem`)."""
    for k, v in overrides.items():
        if k == "ipc":
            cfg.param.ipc = v
            continue
        parts = k.split(".")
        if k.startswith("model.overrides.") and len(parts) == 3:
            with cfg.model.overrides.unlocked():  # any keyword of jaxdd.models.get_model
                cfg.model.overrides[parts[-1]] = v
            continue
        msg = field_problem(cfg, k)
        if msg:
            raise ValueError(f"config string: {msg}")
        node = cfg
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = v
    return cfg


_MODEL_OVERRIDE_FLAG = "--config.model.overrides."


_CONFIG_FLAG = "--config."
_FIELD = "config."  # keys of pop_model_override_flags' dict that are config fields


def pop_config_flags(argv):
    """Split every ``--config.<dotted>[=value]`` flag off a command line (absl's config
    flags would stop at the first unknown field with an ml_collections traceback).

    -> (remaining argv, {model override name: value}, {dotted field: raw text}): the
    ``--config.model.overrides.<name>`` ones (values are Python literals when they parse,
    as in config strings) apart from the others (applied by `apply_config_flags`, which
    parses each by the type of the field it sets). ``--config.a.b value`` and a bare boolean
    ``--config.a.b`` (followed by another flag or nothing: True) are taken too."""
    rest, model, fields = [], {}, {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith(_CONFIG_FLAG) and len(a) > len(_CONFIG_FLAG):
            name, eq, value = a[len(_CONFIG_FLAG):].partition("=")
            if not eq:  # --flag value, or a bare boolean flag
                if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                    value = argv[i + 1]
                    i += 1
                elif name.startswith("model.overrides."):
                    raise ValueError(f"{a} needs a value")
                else:
                    value = "True"
            if name.startswith("model.overrides.") and name.count(".") == 2:
                model[name[len("model.overrides."):]] = _literal(value)
            else:
                fields[name] = value
        else:
            rest.append(a)
        i += 1
    return rest, model, fields


def pop_model_override_flags(argv):
    """Split ``--config.<field>=<value>`` flags off a command line before absl parses it.

    absl's config flags only override fields that exist (an unknown one is an ml_collections
    traceback), and ``model.overrides`` starts empty, so launch/ scripts take these flags out
    first and apply them with `apply_model_overrides` -> (remaining argv, {name: value}):
    the model overrides under their keyword (values are Python literals when they parse,
    else strings, as in config strings); every other ``--config.<dotted>`` under the key
    ``'config.<dotted>'`` with its raw text (see `pop_config_flags`)."""
    rest, model, fields = pop_config_flags(argv)
    found = dict(model)
    found.update({_FIELD + k: v for k, v in fields.items()})
    return rest, found


def _parse_as(current, text):
    """The value of a flag's text for a field holding `current` (absl's rule: by the
    field's type) -> (value, None) or (None, what is expected)."""
    if isinstance(current, bool):
        t = str(text).strip().lower()
        if t in ("true", "1", "yes"):
            return True, None
        if t in ("false", "0", "no"):
            return False, None
        return None, "true or false"
    if isinstance(current, str):
        return str(text), None
    v = _literal(text) if isinstance(text, str) else text
    if isinstance(current, int):
        if isinstance(v, bool) or not isinstance(v, int):
            return None, "an integer"
        return v, None
    if isinstance(current, float):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None, "a number"
        return float(v), None
    if isinstance(current, (tuple, list)):
        if not isinstance(v, (tuple, list)):
            return None, f"a {type(current).__name__} such as {current!r}"
        return type(current)(v), None
    return v, None


def apply_config_flags(cfg, fields: dict) -> list:
    """Set each ``{dotted: raw text}`` of `pop_config_flags` on `cfg`; -> the problems
    (one line each: an unknown field with a "did you mean", a value of the wrong type, a
    whole block), the fields that have none are set."""
    problems = []
    for dotted, text in fields.items():
        msg = field_problem(cfg, dotted)
        if msg:
            problems.append(f"--config.{dotted}: {msg}")
            continue
        *path, last = dotted.split(".")
        node = cfg
        for p in path:
            node = node[p]
        current = node[last]
        if hasattr(current, "keys"):
            problems.append(f"--config.{dotted}: {dotted!r} is a block (fields: "
                            f"{', '.join(sorted(_keys(current)))}); set its fields")
            continue
        value, expected = _parse_as(current, text)
        if expected is not None:
            problems.append(f"--config.{dotted}={text!r}: expected {expected} (the field "
                            f"holds {current!r})")
            continue
        try:
            node[last] = value
        except (TypeError, ValueError, AttributeError, KeyError) as e:
            problems.append(f"--config.{dotted}={text!r}: {e}")
    return problems


_PENDING = {}  # id(cfg) -> (weakref to cfg, [problems of its command-line flags])


def flag_problems(cfg) -> list:
    """The problems `apply_model_overrides` found in the command-line flags applied to
    `cfg` (reported by jaxdd.validate with every other problem of the config)."""
    import weakref  # noqa: F401 -- the entries hold weak references

    ref, problems = _PENDING.get(id(cfg), (None, []))
    return list(problems) if ref is not None and ref() is cfg else []


def apply_model_overrides(cfg, overrides: dict):
    """Apply what `pop_model_override_flags` took off the command line: every
    ``'config.<dotted>'`` entry as a field (`apply_config_flags`; its problems are kept for
    `flag_problems`, so the validation reports them with every other problem before any
    work), then cfg.model.overrides.<name> = value for the other items."""
    import weakref

    fields = {k[len(_FIELD):]: v for k, v in overrides.items() if k.startswith(_FIELD)}
    model = {k: v for k, v in overrides.items() if not k.startswith(_FIELD)}
    if fields:
        problems = apply_config_flags(cfg, fields)
        if problems:
            _PENDING[id(cfg)] = (weakref.ref(cfg), problems)
    if model:
        with cfg.model.overrides.unlocked():
            for k, v in model.items():
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
