"""The README settings table is generated from the configs (jaxdd.published.table)."""
import importlib.util
import os

import pytest

from jaxdd.published import table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = [f"{o}_{p}" for o in ("tm", "dm", "dc") for p in ("pixel", "fred", "ddif", "nsd")]


def _mod(name):
    spec = importlib.util.spec_from_file_location(f"_t_{name}",
                                                  os.path.join(ROOT, "configs", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", NAMES)
def test_every_variant_builds_and_renders(name):
    mod = _mod(name)
    variants = getattr(mod, "VARIANTS", None)
    if variants is None:  # a config without published settings lists none (convention)
        variants = []
    pairs = [(name, mod.get_config(v)) for v in variants]
    rows = table.rows(pairs)
    assert len(rows) == len(variants)
    for r in rows:
        assert r["source"] and not r["source"].startswith("jaxdd default"), (name, r)
        assert r["budget"] > 0 and r["iterations"] > 0
    text = table.markdown(rows)
    assert text.count("\n") == len(rows) + 2


def test_tm_pixel_rows_read_the_config():
    mod = _mod("tm_pixel")
    (r,) = table.rows([("tm_pixel", mod.get_config("cifar100,ipc=50"))])
    assert (r["syn_steps"], r["expert_epochs"], r["max_start"], r["batch_syn"]) == (80, 2, 40,
                                                                                   125)
    assert r["lr_syn"] == "sgd 1000 (m 0.5)" and r["lr_lr"] == 1e-5 and r["zca"] is True
    assert r["budget"] == 50 * 100 * 32 * 32 * 3 and r["source"].startswith("MTT")
    line = table.markdown([r]).splitlines()[2]
    assert "| tm_pixel | cifar100 | 50 | ConvNetD3 | 80 | 2 | 40 |" in line
    (d,) = table.rows([("dm_pixel", _mod("dm_pixel").get_config("cifar10,ipc=10"))])
    assert d["syn_steps"] is None and "| - |" in table.markdown([d])


def test_readme_table_is_the_generated_one():
    """README's settings table is generated from the configs, never typed: it must equal what
    `python launch/settings_table.py --readme=README.md` writes today."""
    pairs = []
    for name in NAMES:
        mod = _mod(name)
        pairs += [(name, mod.get_config(v)) for v in getattr(mod, "VARIANTS", [])]
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    assert table.read_block(readme) == table.markdown(table.rows(pairs)), (
        "README's settings table is stale: run python launch/settings_table.py --readme=README.md")
