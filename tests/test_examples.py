"""The scripts in examples/ run as a reader would run them (subprocesses, from the repository
root) and do what their docstrings say: the custom TM loop lowers its loss, the decode
example writes grids of the requested resolution."""
import itertools
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TM_STEPS = 4
RESOLUTION = 22   # linspace(-1, 1, 22)[::3] == linspace(-1, 1, 8): shared grid points


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The examples started together (they compile at the same time on a 2-core box)."""
    out = tmp_path_factory.mktemp("examples")
    cmds = {
        "tm": [sys.executable, "examples/custom_loop_tm.py", "--steps", str(TM_STEPS),
               "--json", str(out / "tm.json")],
        "decode": [sys.executable, "examples/decode_resolution.py", "--resolution",
                   str(RESOLUTION), "--warmup-steps", "100", "--out", str(out / "decoded")],
        "any_grid": [sys.executable, "examples/decode_any_grid.py", "--out",
                     str(out / "any_grid")],
    }
    procs = {k: subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for k, c in cmds.items()}
    done = {}
    for k, p in procs.items():
        try:
            stdout, stderr = p.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
        done[k] = (p.returncode, stdout, stderr)
    return out, done


def _ok(run):
    rc, stdout, stderr = run
    assert rc == 0, f"exit {rc}\nstdout:\n{stdout}\nstderr:\n{stderr[-4000:]}"
    return stdout


def test_custom_loop_tm_lowers_the_loss(runs):
    out, done = runs
    stdout = _ok(done["tm"])
    printed = [(int(m.group(1)), float(m.group(2)))
               for m in re.finditer(r"^step (\d+) loss (\S+)$", stdout, re.MULTILINE)]
    assert [i for i, _ in printed] == list(range(TM_STEPS)), stdout
    losses = [v for _, v in printed]
    with open(out / "tm.json") as f:
        saved = json.load(f)
    np.testing.assert_allclose(saved["losses"], losses, rtol=1e-5)  # printed with 6 decimals
    assert all(math.isfinite(v) and v > 0 for v in losses), losses
    # the default setting has one expert, one start epoch and full-batch student steps: the
    # loss is a deterministic function of the set, and Adam's small steps lower it each step
    assert all(b < a for a, b in itertools.pairwise(losses)), losses
    assert losses[-1] < 0.97 * losses[0], losses
    assert saved["num_images"] == 40          # FreD k=16 on 8x8: 4 images x 10 classes
    assert saved["syn_lr"] > 0 and saved["syn_lr"] != pytest.approx(0.01, rel=1e-4)  # learned


def _grid_size(n_rows, n_cols, side, pad=1):
    """(width, height) of jaxdd.viz.make_grid's mosaic of side x side images."""
    up = max(1, 64 // side)
    return ((n_cols * (side + pad) + pad) * up, (n_rows * (side + pad) + pad) * up)


def test_decode_resolution_writes_grids_at_the_requested_size(runs):
    out, done = runs
    stdout = _ok(done["decode"])
    dec = out / "decoded"
    with open(dec / "summary.json") as f:
        s = json.load(f)
    assert s["param"] == "ddif" and s["resolution"] == RESOLUTION
    assert s["num_classes"] == 10 and s["per_class"] == 2      # 51-float fields, ipc 2, 8x8
    n = s["num_classes"] * s["per_class"]
    assert s["native_shape"] == [n, 8, 8, 1]
    assert s["shape"] == [n, RESOLUTION, RESOLUTION, 1]
    assert f"{tuple(s['shape'])}" in stdout
    assert os.path.isfile(dec / "synthetic.msgpack")          # the set it made and reloaded
    for key, side in (("grid_native", 8), ("grid", RESOLUTION)):
        img = Image.open(s[key])
        assert img.format == "PNG" and img.mode == "RGB"
        # one row per class, one column per field of the class
        assert img.size == _grid_size(s["num_classes"], s["per_class"], side), (key, img.size)
        px = np.asarray(img)
        assert px.std() > 10                                   # not a blank picture


def test_decode_resolution_is_the_same_fields_on_a_finer_grid(runs):
    """The R x R decode is the same fields evaluated on a finer grid: every 3rd point of the
    22-point grid is a point of the 8-point training grid, where the two decodes agree."""
    out, done = runs
    _ok(done["decode"])
    with open(out / "decoded" / "summary.json") as f:
        s = json.load(f)
    with np.load(s["arrays"]) as z:
        fine, native, labels = z["images"], z["native"], z["labels"]
    assert list(fine.shape) == s["shape"] and list(native.shape) == s["native_shape"]
    assert np.bincount(labels).tolist() == [2] * 10             # class-major, 2 fields each
    np.testing.assert_allclose(fine[:, ::3, ::3], native, rtol=1e-4, atol=1e-4)
    between = fine[:, 1::3, 1::3]                               # points off the 8-point grid
    assert not np.allclose(between, native[:, :7, :7], atol=1e-2)   # new values, not a copy
    # the fitted fields look like the digits (warm-up MSE is printed), not like noise: the
    # fine images vary smoothly, neighbours differ far less than the image's own spread
    steps = np.abs(np.diff(fine, axis=2)).mean()
    assert steps < 0.5 * fine.std(), (steps, fine.std())


def test_decode_any_grid_every_param_on_every_layout(runs):
    out, done = runs
    _ok(done["any_grid"])
    with open(out / "any_grid" / "summary.json") as f:
        summary = json.load(f)
    entries = summary if isinstance(summary, list) else list(summary.values())
    assert len(entries) == 16, summary   # 4 parameterizations x 4 layouts
    for e in entries:
        assert e["stored_floats"] <= e["allowed_floats"], e
        assert list(e["decoded_shape"][1:]) == list(e["image_shape"]), e
