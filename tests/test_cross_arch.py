"""jaxdd.crossarch / launch/cross_arch.py on tiny shapes: a saved 8x8 digits set, two small
networks (one that only runs at 16 px), 2 networks x 2 epochs, no DSA."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxdd import crossarch
from jaxdd.data import load_dataset, random_real
from jaxdd.io import save_synthetic
from jaxdd.models import get_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    tr, _ = load_dataset("digits", resolution=8)
    x, y = random_real(jax.random.key(0), tr, 1)
    path = str(tmp_path_factory.mktemp("syn") / "synthetic.msgpack")
    save_synthetic(path, param_name="pixel", params={"images": np.asarray(x)},
                   aux={"labels": np.asarray(y), "image_shape": (8, 8, 1)}, syn_lr=0.01,
                   meta={"dataset": {"name": "digits", "resolution": 8}})
    return path


def test_fitting_resolution():
    small = get_model("ConvNetD1W4", 10)
    deep = get_model("ConvNetD4W4", 10)  # four 2x2 poolings: 8 px -> 0
    assert crossarch.runs_at(small, (8, 8, 1))
    assert not crossarch.runs_at(deep, (8, 8, 1))
    assert crossarch.fitting_resolution(small, 8, 1) == 8
    assert crossarch.fitting_resolution(deep, 8, 1) == 16


def test_cross_arch_table_and_resume(synthetic, tmp_path):
    out = str(tmp_path / "xa.json")
    kw = dict(num_nets=2, epochs=2, out=out, dsa_strategy="none", log=None)
    syn = {"pixel": synthetic}
    rows = crossarch.cross_arch(syn, ["ConvNetD1W4", "ConvNetD4W4"], **kw)
    assert [(r["label"], r["model"], r["resolution"]) for r in rows] == [
        ("pixel", "ConvNetD1W4", 8), ("pixel", "ConvNetD4W4", 16)]
    for r in rows:
        assert len(r["accs"]) == 2 and 0.0 <= r["mean"] <= 1.0 and r["lr"] == 0.01
    with open(out) as f:
        assert len(json.load(f)["rows"]) == 2
    # a re-run evaluates nothing new (resume), and a forced resolution is honoured
    again = crossarch.cross_arch(syn, ["ConvNetD1W4", "ConvNetD4W4"], **kw)
    assert again == json.loads(json.dumps(rows))
    table = crossarch.markdown_table(again, ["ConvNetD1W4", "ConvNetD4W4"])
    assert "| pixel |" in table and "(@16 px)" in table and table.count("±") == 2


def test_launcher(synthetic, tmp_path):
    out = str(tmp_path / "xa")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, os.path.join(ROOT, "launch", "cross_arch.py"),
                    f"--synthetic=s={synthetic}", "--models=ConvNetD1W4", "--num_nets=1",
                    "--epochs=1", "--dsa_strategy=none", "--no_progress", f"--out={out}"],
                   check=True, cwd=str(tmp_path), env=env, capture_output=True)
    with open(out + ".md") as f:
        assert f.read().startswith("| set | ConvNetD1W4 |")
