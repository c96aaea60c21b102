"""Every config x variant builds EXACTLY the ConfigDict it built before the configs were
folded into jaxdd.config's builders (issue 14): the snapshot in tests/data was written from
the configs as they were (configs/*_vanilla.py then, *_pixel.py now)."""
import importlib.util
import json
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SNAPSHOT = os.path.join(ROOT, "tests", "data", "config_snapshot.json")

with open(SNAPSHOT) as f:
    _SNAP = json.load(f)


def _load(name):
    spec = importlib.util.spec_from_file_location(
        f"_snap_{name}", os.path.join(ROOT, "configs", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("key", sorted(_SNAP))
def test_config_matches_snapshot(key):
    name, variant = key.split(":", 1)
    cfg = _load(name).get_config(variant or None)
    assert json.loads(cfg.to_json_best_effort()) == _SNAP[key]


def test_snapshot_covers_every_variant():
    for o in ("tm", "dm", "dc"):
        for p in ("pixel", "fred", "ddif", "nsd"):
            mod = _load(f"{o}_{p}")
            for v in getattr(mod, "VARIANTS", []):
                assert f"{o}_{p}:{v}" in _SNAP
