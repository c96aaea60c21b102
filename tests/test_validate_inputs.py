"""Issue 32: one validation for every entry point, every problem at once, before any work.
One test per case of the probe (tiny npz, no expert trained, nothing written)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxdd import assemble
from jaxdd import config as C
from jaxdd import validate, validate_run
from tinyrun import tiny_config, write_npz

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def _errors(cfg, **kw):
    """The problems validated_data reports (it must report some)."""
    with pytest.raises(validate.ConfigError) as e:
        assemble.validated_data(cfg, **kw)
    assert "nothing was run or written" in str(e.value)
    return e.value.problems


def test_misspelt_field_from_the_command_line_did_you_mean(npz):
    argv, ov = C.pop_model_override_flags(
        ["distill.py", "--config=x.py", "--config.itrations=5", "--config.opt.syn.nme=adam",
         "--config.seed=abc", "--config.iterations", "7", "--workdir=w"])
    assert argv == ["distill.py", "--config=x.py", "--workdir=w"]
    cfg = C.apply_model_overrides(tiny_config(npz), ov)
    assert cfg.iterations == 7  # a good flag is applied, typed by its field
    probs = validate.distill_config(cfg).errors
    assert ("--config.itrations: unknown config field 'itrations'; did you mean "
            "'iterations'?") in probs
    assert any("'opt.syn.nme'; did you mean 'opt.syn.name'" in p for p in probs)
    assert any("--config.seed='abc': expected an integer" in p for p in probs)


def test_misspelt_field_in_a_config_string():
    with pytest.raises(ValueError, match="did you mean 'iterations'"):
        C.tm_config("pixel", "digits,itrations=5")


def test_unknown_dsa_group_and_optimizer_named_with_the_known_ones_before_data(tmp_path):
    # a missing data file: the names are still checked (no data, no experts needed)
    cfg = tiny_config(str(tmp_path / "missing.npz"), dsa_strategy="color_bogus",
                      opt__syn__name="adamx")
    probs = validate.distill_config(cfg).errors
    assert any("unknown DSA op group 'bogus'" in p and "'crop'" in p for p in probs)
    assert any("opt.syn.name='adamx'" in p and "sgd, adam" in p for p in probs)


def test_batchnorm_model_refused_for_trajectory_matching(npz):
    cfg = tiny_config(npz)
    cfg.model.name = "ConvNetD1W4BN"
    (p,) = _errors(cfg)
    assert "ConvNetD1W4BN" in p and "'ConvNetD1W4'" in p and "stateless" in p


def test_mesh_larger_than_the_devices(npz):
    import jax
    cfg = tiny_config(npz)
    cfg.mesh.data = jax.device_count() + 3
    (p,) = _errors(cfg)
    assert f"mesh.data={jax.device_count() + 3}" in p and "device(s)" in p


def test_ddif_width_zero_is_a_message_not_a_zero_division(npz):
    cfg = C.tm_config("ddif", npz)
    cfg.param.width = 0
    assert _errors(cfg) == ["param.width=0 must be >= 1"]


def test_memory_estimate_refuses_what_cannot_fit(npz):
    cfg = tiny_config(npz, ipc=100000)
    rep = validate.Report()
    est = validate_run.memory(rep, cfg, (8, 8, 1), 3, host=64 * 2**20)  # a 64 MiB machine
    (p,) = rep.errors
    assert "param.ipc=100000" in p and "needs at least" in p and "64.0 MiB" in p
    assert est["synthetic_set"] == 4 * 100000 * 3 * 64
    ok = validate.Report()
    validate_run.memory(ok, tiny_config(npz), (8, 8, 1), 3, host=64 * 2**20)
    assert not ok.errors


def test_single_class_dataset_refused(tmp_path):
    p = write_npz(tmp_path / "one.npz", n=20, k=1)
    (msg,) = _errors(tiny_config(p))
    assert "1 class" in msg and "at least 2 classes" in msg


def test_object_array_npz_named(tmp_path):
    a = np.empty(6, dtype=object)
    for i in range(6):
        a[i] = np.zeros((8, 8, 1), np.float32)
    p = str(tmp_path / "obj.npz")
    np.savez(p, images=a, labels=np.arange(6) % 2)
    (msg,) = _errors(tiny_config(p))
    assert p in msg and "Python objects" in msg


def test_gray_train_rgb_test_refused(tmp_path):
    rng = np.random.default_rng(0)
    p = str(tmp_path / "mix.npz")
    np.savez(p, images=rng.uniform(size=(30, 8, 8, 1)).astype(np.float32),
             labels=np.arange(30) % 3, test_images=rng.uniform(size=(9, 8, 8, 3)).astype(
                 np.float32), test_labels=np.arange(9) % 3)
    (msg,) = _errors(tiny_config(p))
    assert "(8, 8, 3)" in msg and "(8, 8, 1)" in msg


@pytest.mark.parametrize("objective", ["cfm", "dm", "tm"])
def test_nonpositive_eval_lr_epochs_num_nets_refused_everywhere(npz, objective):
    cfg = (C.cfm_config("pixel", npz) if objective == "cfm" else
           C.matching_config("dm", "pixel", npz) if objective == "dm" else tiny_config(npz))
    cfg.eval.final = True
    with cfg.eval.unlocked():
        cfg.eval.lr = -1.0
    cfg.eval.epochs, cfg.eval.num_nets = 0, 0
    probs = validate.distill_config(cfg).errors
    for field in ("eval.lr=-1.0 must be > 0", "eval.epochs=0", "eval.num_nets=0"):
        assert any(field in p for p in probs), (field, probs)


def test_decode_subset_and_batch_syn_larger_than_the_set_are_clamped_with_a_note(npz, capsys):
    cfg = tiny_config(npz, decode_subset=50)
    cfg.objective.batch_syn = 40
    assemble.validated_data(cfg)  # not refused: the loop uses the whole set
    err = capsys.readouterr().err
    assert "decode_subset=50 >= the 3 synthetic instances" in err and "clamped" in err
    assert "objective.batch_syn=40 > the 3 synthetic images" in err


def test_finished_run_asked_for_fewer_iterations(tmp_path, npz):
    w = tmp_path / "w"
    for s in (25, 30):
        (w / "checkpoints" / str(s)).mkdir(parents=True)
    (w / "synthetic.msgpack").write_bytes(b"x")
    probs = _errors(tiny_config(npz, iterations=10), workdir=str(w))
    assert any("finished at iteration 30" in p and "--config.iterations=N with N >= 30" in p
               for p in probs), probs
    assemble.validated_data(tiny_config(npz, iterations=40), workdir=str(w))  # extends


def test_output_dirs_every_problem_at_once(tmp_path, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    ro = tmp_path / "ro"
    ro.mkdir()
    real = validate_run._writable
    monkeypatch.setattr(validate_run, "_writable",
                        lambda d: "is not writable" if d == str(ro) else real(d))
    rep = validate.output_dirs(validate.Report(), {
        "workdir": str(f), "buffer dir": str(f / "sub" / "x"), "out": "",
        "grids": str(ro / "new"), "fine": str(tmp_path / "a" / "b"), "here": str(tmp_path)})
    e = "\n".join(rep.errors)
    assert len(rep.errors) == 4, e
    assert f"workdir {f} is a regular file" in e
    assert f"{f} is a regular file, not a directory" in e and "buffer dir" in e
    assert "out is empty" in e and f"grids {ro / 'new'} cannot be created" in e
    assert not (tmp_path / "a").exists() and not list(ro.iterdir())  # nothing created


def test_distill_command_reports_every_problem_without_a_traceback(tmp_path, npz):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JAX_PLATFORMS="cpu")
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "launch", "distill.py"),
         f"--config={os.path.join(ROOT, 'configs', 'tm_pixel.py')}:{npz}",
         "--config.itrations=5", "--config.opt.syn.name=adamx", "--config.dsa_strategy=bogus",
         f"--workdir={tmp_path / 'w'}", "--no_progress"],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=300, env=env)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "did you mean 'iterations'?" in out and "adamx" in out and "'bogus'" in out, out
    assert "Traceback" not in out
    assert not os.path.exists(tmp_path / "w" / "config.json")
