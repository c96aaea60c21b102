"""The published-settings table of docs/results.md is generated from the configs
(jaxdd.published.table, launch/settings_table.py)."""
import importlib.util
import os
import subprocess
import sys

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


def _generated():
    pairs = []
    for name in NAMES:
        mod = _mod(name)
        pairs += [(name, mod.get_config(v)) for v in getattr(mod, "VARIANTS", [])]
    return table.markdown(table.rows(pairs))


def test_docs_table_is_the_generated_one():
    """docs/results.md's settings table is generated from the configs, never typed: it must
    equal what `python launch/settings_table.py --doc=docs/results.md` writes today."""
    with open(os.path.join(ROOT, table.DOC)) as f:
        doc = f.read()
    assert table.BEGIN in doc and table.END in doc, f"{table.DOC} lost its generated block"
    want = _generated()
    assert want.count("\n") > 50  # every published variant, not an empty table
    assert table.read_block(doc) == want, (
        f"{table.DOC}'s settings table is stale: run "
        f"python launch/settings_table.py --doc={table.DOC}")


def test_table_lives_in_one_place():
    """The README is an index: it links to the table, it does not hold a second copy."""
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    assert "settings-table:begin" not in readme
    assert table.DOC in readme


def test_replace_block_rewrites_a_stale_table():
    doc = f"# t\n\nbefore\n{table.BEGIN}\n| stale |\n{table.END}\nafter\n"
    new = table.replace_block(doc, "| fresh |\n")
    assert table.read_block(doc) == "| stale |\n" and table.read_block(new) == "| fresh |\n"
    assert new.startswith("# t\n\nbefore\n") and new.endswith(f"{table.END}\nafter\n")
    with pytest.raises(ValueError, match="no settings-table block"):
        table.replace_block("# no markers\n", "| x |\n")


def test_launcher_writes_the_block(tmp_path):
    """`--doc` rewrites only the block of the given file (one config, to stay quick)."""
    doc = tmp_path / "results.md"
    doc.write_text(f"intro\n{table.BEGIN}\n| stale |\n{table.END}\noutro\n")
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "launch", "settings_table.py"), f"--doc={doc}",
         "--configs=tm_pixel"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    mod = _mod("tm_pixel")
    want = table.markdown(table.rows([("tm_pixel", mod.get_config(v)) for v in mod.VARIANTS]))
    text = doc.read_text()
    assert table.read_block(text) == want
    assert text.startswith("intro\n") and text.endswith(f"{table.END}\noutro\n")


def test_modal_rows_are_in_the_table():
    """The video / audio / voxel rows (DDiF, FreD 3D MNIST): their grid budget and source."""
    want = {("dm_ddif", "miniucf", 1): 1 * 50 * 16 * 112 * 112 * 3,
            ("dm_ddif", "modelnet10", 1): 10 * 32 ** 3, ("dc_ddif", "shapenet", 1): 16 * 32 ** 3,
            ("dc_ddif", "mini_speech_commands", 20): 20 * 8 * 64 * 64,
            ("dm_fred", "3dmnist", 1): 40960}   # FreD Table 4's "#Params 40.96k"
    got = {}
    for name in ("dm_ddif", "dc_ddif", "dm_fred"):
        mod = _mod(name)
        for v in mod.VARIANTS:
            (r,) = table.rows([(name, mod.get_config(v))])
            got[(name, r["dataset"], r["ipc"])] = r
    for key, budget in want.items():
        assert got[key]["budget"] == budget, key
    assert got[("dc_ddif", "mini_speech_commands", 10)]["source"].startswith(
        "DDiF paper Table 9 (a), no code")
    assert got[("dm_ddif", "modelnet10", 1)]["model"] == "conv3dnet"
    assert got[("dm_ddif", "miniucf", 5)]["model"] == "convnet3d"
