"""Evaluation that cannot score the wrong thing (issue 32): launch/evaluate.py's and
launch/cross_arch.py's work (`jaxdd.crossarch`, `jaxdd.evalcheck`) checks the set against the
data it is scored on (classes, channels, rank), the networks, the counts, the flags, the set
file, the resume file and the output paths before any training, and reports every problem
at once; a CFM set is scored with its teacher's soft labels by default. Tiny saved sets
(digits at 8x8, IPC 1; a 3-D npz), 1 network x 1 epoch where anything is trained."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxdd import config as C
from jaxdd import crossarch, evalcheck
from jaxdd.data import load_dataset, random_real
from jaxdd.io import save_synthetic, save_tree
from jaxdd.models import get_model
from jaxdd.validate import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _save(path, x, y, meta):
    save_synthetic(str(path), param_name="pixel", params={"images": np.asarray(x)},
                   aux={"labels": np.asarray(y), "image_shape": tuple(x.shape[1:])},
                   syn_lr=0.01, meta=meta)
    return str(path)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    d = tmp_path_factory.mktemp("sets")
    tr, _ = load_dataset("digits", resolution=8)
    x, y = random_real(jax.random.key(0), tr, 1)
    own = {"dataset": {"name": "digits", "resolution": 8}, "objective": "tm",
           "evaluation": {"protocol": "hard_label"}}
    out = {"tm": _save(d / "tm.msgpack", x, y, own)}
    rng = np.random.default_rng(0)
    out["three"] = str(d / "three.npz")  # 3 classes of 8x8 gray images
    np.savez(out["three"], images=rng.integers(0, 255, (30, 8, 8, 1)).astype(np.uint8),
             labels=np.repeat(np.arange(3), 10))
    out["rgb"] = str(d / "rgb.npz")      # 10 classes of 8x8 RGB images
    np.savez(out["rgb"], images=rng.integers(0, 255, (50, 8, 8, 3)).astype(np.uint8),
             labels=np.repeat(np.arange(10), 5))
    # a set whose own data file now holds 3 classes (replaced in place)
    out["stale"] = _save(d / "stale.msgpack", x, y,
                         {"dataset": {"name": out["three"]}, "objective": "tm"})
    b = open(out["tm"], "rb").read()
    out["trunc"] = str(d / "trunc.msgpack")
    open(out["trunc"], "wb").write(b[: len(b) // 2])
    # a tiny voxel set on a tiny voxel npz (N, D, H, W, 1)
    out["vox_npz"] = str(d / "vox.npz")
    np.savez(out["vox_npz"], images=rng.random((20, 4, 4, 4, 1)) > 0.5,
             labels=np.repeat(np.arange(2), 10))
    out["vox"] = _save(d / "vox.msgpack", np.zeros((2, 4, 4, 4, 1), np.float32),
                       np.arange(2), {"dataset": {"name": out["vox_npz"]}, "objective": "dm"})
    # a CFM set: soft labels of a (tiny, untrained) teacher recorded in its metadata
    m = get_model("ConvNetD1W4", 10)
    v = m.init(jax.random.key(1), np.zeros((1, 8, 8, 1), np.float32), train=False)
    save_tree(str(d / "teacher.msgpack"), {"variables": jax.device_get(v), "test_acc": 0.5})
    ev = C.cfm_config("pixel", "digits,ipc=1").eval.to_dict()
    out["cfm"] = _save(d / "cfm.msgpack", x, y, {
        "dataset": {"name": "digits", "resolution": 8}, "objective": "cfm",
        "evaluation": {"protocol": "soft_label", "eval": ev, "teacher": {
            "path": str(d / "teacher.msgpack"), "name": "ConvNetD1W4", "overrides": {}}}})
    out["file"] = str(d / "a_file")
    open(out["file"], "w").write("x")
    return out


def _problems(exc_info):
    return "\n".join(exc_info.value.problems)


def test_evaluate_refuses_data_of_another_class_count_or_shape(sets):
    with pytest.raises(ConfigError) as e:  # was: "25.00 %"-like scores on 3 classes
        crossarch.evaluate_saved(jax.random.PRNGKey(0), sets["tm"], dataset=sets["three"],
                                 model="ConvNetD1W4", num_nets=1, epochs=1)
    assert "10 classes" in _problems(e) and "has 3" in _problems(e)
    assert "its own is 'digits'" in _problems(e)
    with pytest.raises(ConfigError, match=r"1 channel\(s\) \(8, 8, 1\).* has 3 \(8, 8, 3\)"):
        crossarch.evaluate_saved(jax.random.PRNGKey(0), sets["tm"], dataset=sets["rgb"],
                                 model="ConvNetD1W4", num_nets=1, epochs=1)
    with pytest.raises(ConfigError, match="10 classes .* its own dataset .* has 3"):
        crossarch.evaluate_saved(jax.random.PRNGKey(0), sets["stale"], model="ConvNetD1W4",
                                 num_nets=1, epochs=1)


def test_evaluate_refuses_its_own_data_preprocessed_otherwise(sets, tmp_path):
    """A set records what it is of (meta.data, written by the run): its own dataset loading
    with other normalization / ZCA now is refused; the recorded class count is used."""
    tr, _ = load_dataset("digits", resolution=8)
    x, y = random_real(jax.random.key(0), tr, 1)
    data = {"modality": "image", "preprocessing": "zca01-eps0.1", "num_classes": 10,
            "image_shape": [8, 8, 1]}
    path = _save(tmp_path / "zca.msgpack", x, y,
                 {"dataset": {"name": "digits", "resolution": 8}, "objective": "tm",
                  "data": data})
    with pytest.raises(ConfigError, match="preprocessed as 'zca01-eps0.1'.*'standardize"):
        crossarch.evaluate_saved(jax.random.PRNGKey(0), path, model="ConvNetD1W4",
                                 num_nets=1, epochs=1)
    facts = evalcheck.set_facts({"aux": {"image_shape": (8, 8, 1), "labels": np.arange(3)},
                                 "meta": {"data": dict(data, num_classes=12)}})
    assert facts["num_classes"] == 12 and facts["modality"] == "image"


def test_evaluate_reports_every_problem_before_training(sets, tmp_path):
    with pytest.raises(ConfigError) as e:
        crossarch.evaluate_saved(jax.random.PRNGKey(0), sets["trunc"], model="Bogus",
                                 num_nets=0, epochs=-2, out=os.path.join(sets["file"], "r.json"))
    p = _problems(e)
    for want in ("--num_nets=0", "--epochs=-2", "unknown network(s) 'Bogus'; known: ",
                 "ConvNetD1", "is damaged or not a synthetic.msgpack", "a regular file"):
        assert want in p, (want, p)
    assert len(e.value.problems) == 5


def test_cross_arch_checks_everything_before_evaluating(sets, tmp_path, monkeypatch):
    def no_training(*a, **k):
        raise AssertionError("evaluated before every problem was reported")
    monkeypatch.setattr(crossarch, "evaluate_pair", no_training)
    resume = tmp_path / "xa.json"
    resume.write_text("{not json")
    kw = dict(resolutions={"ConvNetD1W4": 0, "VGG": 32}, out=str(resume), log=None)
    with pytest.raises(ConfigError) as e:
        crossarch.cross_arch({"t": sets["trunc"], "ok": sets["tm"], "v": sets["vox"],
                              "gone": str(tmp_path / "none.msgpack")},
                             ["ConvNetD1W4", "Bogus"], num_nets=0, epochs=-1,
                             dsa_strategy="none", **kw)
    p = _problems(e)
    for want in ("--num_nets=0", "--epochs=-1", "unknown network(s) 'Bogus'",
                 "--resolutions names VGG, not in --models", "ConvNetD1W4=0",
                 "xa.json (the resume file of --out) is not readable JSON",
                 "nothing was overwritten", "set t: ", "damaged", "none.msgpack: no such file",
                 "set v", "take 2-D (N, H, W, C) batches", "--models=Conv3DNet"):
        assert want in p, (want, p)
    assert resume.read_text() == "{not json"  # the resume file is left as it was
    # a resume file made with other settings is not mixed into
    resume.write_text(json.dumps({"num_nets": 5, "epochs": 1000, "rows": []}))
    with pytest.raises(ConfigError, match="num_nets=5 .now 1.*epochs=1000 .now 1"):
        crossarch.cross_arch({"ok": sets["tm"]}, ["ConvNetD1W4"], num_nets=1, epochs=1,
                             out=str(resume), log=None, dsa_strategy="none")
    # an --out under a regular file is refused first, not after the evaluation
    with pytest.raises(ConfigError, match="a regular file"):
        crossarch.cross_arch({"ok": sets["tm"]}, ["ConvNetD1W4"], num_nets=1, epochs=1,
                             out=os.path.join(sets["file"], "xa.json"), log=None)


def test_cross_arch_voxel_set_and_dsa(sets):
    with pytest.raises(ConfigError) as e:  # the default 2-D model list on a 3-D set
        crossarch.plan({"v": sets["vox"]}, crossarch.DEFAULT_MODELS, num_nets=1, epochs=1)
    p = _problems(e)
    assert "ConvNetD2W32, AlexNet, VGG11, ResNet18, ViT take 2-D" in p
    assert "--models=" in p and "Conv3DNet" in p and "--dsa_strategy" in p
    assert crossarch.plan({"v": sets["vox"]}, ["Conv3DNet"], num_nets=1, epochs=1,
                          dsa_strategy="none") == []


def test_cross_arch_scores_a_cfm_set_with_soft_labels(sets, tmp_path):
    rows = crossarch.cross_arch({"c": sets["cfm"]}, ["ConvNetD1W4"], num_nets=1, epochs=1,
                                out=str(tmp_path / "xa.json"), log=None)
    assert rows[0]["protocol"] == "soft_label" and len(rows[0]["accs"]) == 1
    hard = crossarch.cross_arch({"c": sets["cfm"]}, ["ConvNetD1W4"], num_nets=1, epochs=1,
                                protocol="hard_label", dsa_strategy="none", log=None)
    assert hard[0]["protocol"] == "hard_label"


def test_flag_parsing_and_paths(sets, tmp_path):
    res, bad = evalcheck.parse_resolutions(["VGG11=32", "X=abc", "Y", "=4", "Z=-2"])
    assert res == {"VGG11": 32} and len(bad) == 4
    assert all("model=side" in b and "--resolutions" in b for b in bad)
    assert "'X=abc'" in bad[0]
    assert evalcheck.output_problems(str(tmp_path / "new" / "dir" / "x.json")) == []
    assert not os.path.exists(tmp_path / "new")  # checking creates nothing
    assert "is a directory" in evalcheck.output_problems(str(tmp_path))[0]
    assert "regular file" in evalcheck.output_problems(os.path.join(sets["file"], "x"))[0]
    assert "/proc is not writable" in evalcheck.output_problems("/proc/jaxdd-x/y.json")[0]
    assert "not readable JSON" in evalcheck.resume_rows(sets["file"], {})[1][0]
    table = tmp_path / "t.json"
    table.write_text(json.dumps({"rows": [{"label": "a"}]}))
    assert "not a cross_arch table" in evalcheck.resume_rows(str(table), {})[1][0]
    assert evalcheck.resume_rows(str(tmp_path / "absent.json"), {}) == ([], [])


def test_cross_arch_launcher_reports_all_at_once(sets, tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = os.path.join(sets["file"], "xa")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "cross_arch.py"),
                        f"--synthetic=a={sets['tm']},a={sets['cfm']}", "--models=Bogus",
                        "--num_nets=0", "--resolutions=X=abc", f"--out={out}",
                        "--compile_cache=off"],
                       cwd=str(tmp_path), env=env, capture_output=True, text=True)
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
    for want in ("the label 'a' is given twice", "--resolutions: 'X=abc' is not model=side",
                 "unknown network(s) 'Bogus'", "--num_nets=0", "(xa.md): its folder",
                 "nothing was run or written"):
        assert want in p.stderr, (want, p.stderr)
