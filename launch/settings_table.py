"""Print (or write) the table of every published setting the configs encode.

    python launch/settings_table.py                          # markdown on stdout
    python launch/settings_table.py --out=settings.md        # the bare table, to a file
    python launch/settings_table.py --doc=docs/results.md    # rewrite the generated block
                                                             # of docs/results.md

docs/results.md holds the table between two marker lines (jaxdd.published.table.BEGIN /
END); tests/test_settings_table.py fails when that block differs from what `--doc` writes.

Loads configs/<objective>_<param>.py by path, builds each entry of its VARIANTS list (the
convention is in jaxdd/published/__init__.py) and renders the rows with
jaxdd.published.table. A variant that fails to build is reported and makes the exit status 1.
"""
import importlib.util
import os
import sys

from absl import app, flags

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")  # configs/ lives here

_OUT = flags.DEFINE_string("out", None, "write the markdown here instead of stdout")
_DOC = flags.DEFINE_string(
    "doc", None, "replace the generated block of this markdown file (the table lives in "
    "docs/results.md)")
_CONFIGS = flags.DEFINE_list(
    "configs", [f"{o}_{p}" for o in ("tm", "dm", "dc")
                for p in ("pixel", "fred", "ddif", "nsd")],
    "config modules under configs/ to read")


def load_config_module(name):
    path = os.path.join(ROOT, "configs", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_cfg_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv):
    del argv
    from jaxdd.published import table

    pairs, failed = [], 0
    for name in _CONFIGS.value:
        mod = load_config_module(name)
        variants = getattr(mod, "VARIANTS", None)
        if variants is None:
            print(f"[settings_table] {name}: no VARIANTS list, skipped", file=sys.stderr)
            continue
        for v in variants:
            try:
                pairs.append((name, mod.get_config(v)))
            except Exception as e:  # noqa: BLE001 - report every broken variant
                failed += 1
                print(f"[settings_table] {name}:{v} failed: {e}", file=sys.stderr)
    text = table.markdown(table.rows(pairs))
    if _DOC.value:
        with open(_DOC.value) as f:
            old = f.read()
        new = table.replace_block(old, text)  # raises (nothing written) without the markers
        with open(_DOC.value, "w") as f:
            f.write(new)
        print(f"updated the settings table in {_DOC.value} ({len(pairs)} rows)")
    elif _OUT.value:
        with open(_OUT.value, "w") as f:
            f.write(text)
        print(f"wrote {_OUT.value} ({len(pairs)} rows)")
    else:
        print(text, end="")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
