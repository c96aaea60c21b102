"""CFM as a whole, at tiny shapes: squeeze -> statistics -> recover (the generic loop with the
CFM objective) -> relabel, through `jaxdd.distill.run` with a configs/cfm_pixel.py config
(digits at 8x8, ConvNetD1W4BN teacher and students, IPC 2 = two class-batches of 3 recover
iterations, 2 students x 2 relabel epochs); the cached stages, resume, the spectral report,
launch/cfm.py, and the teacher's own checkpoint/resume (jaxdd.io.save_state)."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdd import assemble
from jaxdd import teacher, distill, io
from jaxdd import config as C
from jaxdd.bench import spectral
from jaxdd.data import load_dataset
from jaxdd.models import get_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ("digits,ipc=2,recover_iterations=3,epochs=2,dataset.resolution=8,"
        "objective.teacher.name=ConvNetD1W4BN,model.name=ConvNetD1W4BN,"
        "objective.squeeze.epochs=1,objective.statistics.batch_size=512,"
        "eval.num_nets=2,eval.final_nets=2")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("cfm"))
    cfg = C.cfm_config("pixel", TINY)
    result = distill.run(cfg, wd, progress=False)
    return wd, cfg, result


def test_pipeline_end_to_end(run_dir):
    wd, cfg, result = run_dir
    assert cfg.iterations == 6 and cfg.param.init == "first"
    for f in ("teacher.msgpack", "stats.msgpack", "synthetic.msgpack", "result.json",
              "config.json", "grids/final.png"):
        assert os.path.exists(os.path.join(wd, f)), f
    assert not os.path.exists(os.path.join(wd, "teacher_ckpt.msgpack"))
    assert result["step"] == 6 and "soft labels" in result["protocol"]
    assert len(result["final_eval"]["accs"]) == 2
    assert 0.0 <= result["final_eval"]["mean"] <= 1.0
    assert 0.0 < result["teacher_test_acc"] <= 1.0
    with open(os.path.join(wd, "result.json")) as f:
        assert json.load(f)["final_eval"] == result["final_eval"]
    # the set started from the first 2 training images of each class and every class-batch
    # (instance 0 and 1 of each class) was recovered
    tr, _ = load_dataset("digits", resolution=8)
    first = np.concatenate([tr.images[np.flatnonzero(tr.labels == c)[:2]] for c in range(10)])
    images, labels, _ = io.decode_synthetic(os.path.join(wd, "synthetic.msgpack"))
    assert images.shape == (20, 8, 8, 1) and labels.tolist() == np.repeat(np.arange(10), 2).tolist()
    moved = np.abs(np.asarray(images) - first).reshape(10, 2, -1).max(-1)
    assert (moved > 0).all(), moved
    stats = io.load_tree(os.path.join(wd, "stats.msgpack"))
    assert stats["count"] == tr.images.shape[0] and len(stats["psi"]) == 1


def test_saved_set_is_scored_with_its_own_protocol(run_dir):
    """The set records how it is scored (meta.evaluation: soft labels, the run's teacher);
    launch/evaluate.py's work (crossarch.evaluate_saved) defaults to it, and scores the
    same as the run's own soft-label evaluator; --protocol=hard_label is an explicit choice."""
    from jaxdd import crossarch, evaluators
    wd, cfg, result = run_dir
    path = os.path.join(wd, "synthetic.msgpack")
    meta = io.load_synthetic(path)["meta"]
    assert meta["evaluation"]["protocol"] == "soft_label"
    assert meta["evaluation"]["teacher"]["path"] == os.path.join(wd, "teacher.msgpack")
    assert evaluators.stored_protocol(meta) == "soft_label"
    key = jax.random.PRNGKey(3)
    soft = crossarch.evaluate_saved(key, path, num_nets=2, epochs=2)
    assert soft["protocol"] == "soft_label"
    run = distill.Run(cfg, wd, progress=False)
    own = run.evaluators[0].run(run.eval_ctx, key, run.decode_all(),
                                np.asarray(run.aux["labels"]), 0.0, final=True)
    np.testing.assert_allclose(soft["accs"], own.accs, rtol=0, atol=0)
    hard = crossarch.evaluate_saved(key, path, num_nets=2, epochs=2, protocol="hard_label")
    assert hard["protocol"] == "hard_label"


def test_resume_loads_the_stages(run_dir, capsys):
    wd, cfg, _ = run_dir
    run = distill.Run(cfg, wd, progress=False)
    assert "teacher loaded" in capsys.readouterr().out
    assert int(run.state.step) == 6  # a re-run of the command resumes at the end
    np.testing.assert_array_equal(np.asarray(run.decode_all()),
                                  np.asarray(io.decode_synthetic(
                                      os.path.join(wd, "synthetic.msgpack"))[0]))
    # a cached teacher made with another squeeze config is refused, naming the file
    other = C.cfm_config("pixel", TINY + ",objective.squeeze.lr=0.05")
    with pytest.raises(ValueError, match="teacher.msgpack"):
        teacher.prepare_teacher(other.objective, *assemble.data(other), wd, progress=False)


def test_spectral_report_and_launcher(run_dir, tmp_path):
    wd, _, _ = run_dir
    rep = spectral.cfm_workdir_report(wd, bands=2, progress=False)
    assert rep["num_syn"] == 20 and len(rep["layers"]) == 1
    lay = rep["layers"][0]  # the conv input of a gray image: d = 1 (one band)
    assert lay["dim"] == 1 and len(lay["eig_syn"]) == 1
    assert lay["flc_band_fraction_syn"] == pytest.approx([1.0])
    # launch/cfm.py --mode=squeeze with the run's squeeze dir: loads the cached teacher
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "launch", "cfm.py"),
         f"--config={os.path.join(ROOT, 'configs', 'cfm_pixel.py')}:{TINY},objective.squeeze.dir={wd}",
         "--mode=squeeze", "--no_progress", f"--workdir={tmp_path / 'w'}"],
        check=True, cwd=str(tmp_path), env=env, capture_output=True, text=True)
    assert "teacher loaded" in out.stdout and "teacher ready" in out.stdout


def test_teacher_checkpoint_resumes_to_the_same_teacher(tmp_path):
    model = get_model("ConvNetD1W4BN", 3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 8, 8, 1)).astype(np.float32)
    y = np.arange(24, dtype=np.int32) % 3
    kw = dict(epochs=2, batch_size=8, crop_pad=1, flip=False, progress=False)
    full = teacher.train_teacher(jax.random.key(0), model, x, y, **kw)
    ck = str(tmp_path / "teacher_ckpt.msgpack")
    # checkpoint_every=1: the state after epoch 1 is written (and kept: train_teacher leaves
    # the file, squeeze_stage removes it); a second call resumes from epoch 1
    teacher.train_teacher(jax.random.key(0), model, x, y, ckpt_path=ck, checkpoint_every=1, **kw)
    assert io.load_tree(ck)["epoch"] == 1
    resumed = teacher.train_teacher(jax.random.key(0), model, x, y, ckpt_path=ck,
                                checkpoint_every=1, **kw)
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert any(float(jnp.abs(a).max()) > 0 for a in jax.tree.leaves(full["batch_stats"]))
