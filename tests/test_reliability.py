"""Issue 16 (reliability), one test (or a few) per item, tiny shapes; toy objectives where
the loop's behaviour is tested (no expert training, one cheap step compile).

1 a failed start never poisons its workdir      5 divergence that is not NaN
2 resume compares every result-changing field   6 experts: see tests/test_experts.py
3 damaged files                                 7 the smaller ones
4 one validation pass, every problem at once      fault injection: test_reliability_faults.py
"""
import json
import os
import subprocess
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdd import guards
from jaxdd import assemble
from jaxdd import config as C
from jaxdd import distill, validate
from jaxdd import workdir as wd
from jaxdd.objective import Objective
from jaxdd.param import pixel
from tinyrun import tiny_config, write_npz

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


_npz = write_npz


@pytest.fixture(scope="module")
def npz_path(tmp_path_factory):
    return _npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def tiny_cfg(npz_path, buffer_dir=""):
    return tiny_config(npz_path, buffer_dir, iterations=3)


class Ctx(NamedTuple):
    syn_lr: jax.Array
    step: jax.Array


def toy(lr_push=0.0, explode_from=None, learn_lr=False, lr_dip=False):
    """A cheap objective: pulls the images to 0.5; `lr_push` > 0 drives syn_lr down (only
    at the first iteration, then up, with `lr_dip`); from iteration `explode_from` on, a
    huge loss scale drives the images away."""
    def build(setup):
        def loss(key, images, labels, ctx):
            push = jnp.where(ctx.step == 0, 1.0, -1.0) if lr_dip else 1.0
            base = jnp.mean((images - 0.5) ** 2) + lr_push * push * ctx.syn_lr
            if explode_from is not None:
                base = base - jnp.where(ctx.step >= explode_from, 1e6, 0.0) * jnp.mean(images)
            return base

        return Objective(loss=loss, sample_ctx=lambda k, lr, d, s: Ctx(lr, s), data={},
                         learn_lr=learn_lr, init_state=lambda k: jnp.int32(0),
                         post_step=lambda k, s, x, y, d, step: s + 1)
    return build


def _run(cfg, w, **kw):
    return distill.Run(cfg, str(w), progress=False, build_objective=kw.pop("obj", toy()), **kw)


# ----------------------------------------------------------------------------- 1


def test_failed_start_does_not_poison_the_workdir(tmp_path, npz_path):
    bad = tiny_cfg(npz_path)
    bad.model.name = "NoSuchNet"
    with pytest.raises(validate.ConfigError, match="NoSuchNet"):
        _run(bad, tmp_path / "w")
    assert not os.path.exists(tmp_path / "w" / "config.json")
    run = _run(tiny_cfg(npz_path), tmp_path / "w")  # the corrected command works
    assert os.path.exists(tmp_path / "w" / "config.json")
    assert int(run.state.step) == 0 and run.ckpt.latest_step() == 0


# ----------------------------------------------------------------------------- 2


def test_resume_refuses_any_result_changing_difference_and_records_allowed_ones(
        tmp_path, npz_path):
    cfg = tiny_cfg(npz_path)
    _run(cfg, tmp_path / "w").train(stop_after=1)
    before = open(tmp_path / "w" / "config.json").read()
    changed = tiny_cfg(npz_path)
    changed.opt.syn.lr = 1000.0
    changed.buffer.num_experts = 4
    changed.opt.lr.init = 0.02
    with pytest.raises(wd.WorkdirError) as e:
        _run(changed, tmp_path / "w")
    for field in ("opt.syn.lr", "buffer.num_experts", "opt.lr.init"):
        assert field in str(e.value)
    # allowed: longer run, other intervals / evaluation settings; recorded, not written over
    ok = tiny_cfg(npz_path)
    ok.iterations, ok.log_every, ok.eval.num_nets = 5, 2, 3
    run = _run(ok, tmp_path / "w")
    assert int(run.state.step) == 1
    assert open(tmp_path / "w" / "config.json").read() == before
    log = [json.loads(line) for line in open(tmp_path / "w" / "resume.jsonl")]
    assert log[-1]["step"] == 1
    assert log[-1]["changes"]["iterations"] == [3, 5]
    assert log[-1]["changes"]["eval.num_nets"] == [5, 3]


def test_resume_identifies_npz_data_by_content(tmp_path):
    """config.json records the npz file's sha256 (jaxdd.fingerprint): the run resumes from
    the same bytes at another path (the path change recorded in resume.jsonl) and refuses
    other pixels under the recorded path, naming the file and both hashes."""
    import shutil

    from jaxdd import fingerprint
    os.makedirs(tmp_path / "a")
    p = _npz(tmp_path / "a" / "tiny.npz")
    _run(tiny_cfg(p), tmp_path / "w").train(stop_after=1)
    sha = fingerprint.file_sha256(p)
    assert json.load(open(tmp_path / "w" / "config.json"))["dataset"]["sha256"] == sha
    q = str(tmp_path / "moved.npz")
    shutil.move(p, q)
    run = _run(tiny_cfg(q), tmp_path / "w")
    assert int(run.state.step) == 1
    log = [json.loads(line) for line in open(tmp_path / "w" / "resume.jsonl")]
    assert log[-1]["changes"]["dataset.name"] == [p, q]
    with np.load(q) as z:
        arrays = dict(z)
    arrays["images"] = 1.0 - arrays["images"]
    np.savez(p, **arrays)  # other pixels, back under the recorded path
    with pytest.raises(wd.WorkdirError) as e:
        _run(tiny_cfg(p), tmp_path / "w")
    msg = str(e.value)
    assert f"dataset.sha256: recorded {sha!r}, now {fingerprint.file_sha256(p)!r}" in msg
    assert f"The data file {p} holds other bytes" in msg


def test_config_diff_lists_every_field():
    blocking, allowed = wd.config_diff({"a": 1, "eval": {"every": 0}, "opt": {"lr": 1}},
                                       {"a": 2, "eval": {"every": 5}, "opt": {"lr": 1, "x": 0}})
    assert [b[0] for b in blocking] == ["a", "opt.x"]
    assert [a[0] for a in allowed] == ["eval.every"]


# ----------------------------------------------------------------------------- 3


def _truncate_largest(directory):
    files = [os.path.join(r, f) for r, _, fs in os.walk(directory) for f in fs]
    big = max(files, key=os.path.getsize)
    with open(big, "r+b") as f:
        f.truncate(max(1, os.path.getsize(big) // 3))
    return big


def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, npz_path, capsys):
    cfg = tiny_cfg(npz_path)
    full = _run(cfg, tmp_path / "full")
    full.train()
    run = _run(cfg, tmp_path / "w")
    run.train(stop_after=2)
    _truncate_largest(tmp_path / "w" / "checkpoints" / "2")
    resumed = _run(cfg, tmp_path / "w")
    out = capsys.readouterr().out
    assert "checkpoint 2" in out and "set aside" in out
    assert int(resumed.state.step) == 1
    assert any(n.startswith("2-") for n in os.listdir(tmp_path / "w" / "damaged"))
    resumed.train()
    np.testing.assert_array_equal(np.asarray(full.state.syn_params["images"]),
                                  np.asarray(resumed.state.syn_params["images"]))
    steps = [r["step"] for r in wd.read_metrics(tmp_path / "w" / "metrics.jsonl")]
    assert steps == [1, 2, 3]  # no duplicate lines after the resume


def test_damaged_or_missing_run_files_are_named(tmp_path, npz_path):
    cfg = tiny_cfg(npz_path)
    _run(cfg, tmp_path / "w").train(stop_after=1)
    aux = tmp_path / "w" / "aux.msgpack"
    good = aux.read_bytes()
    aux.write_bytes(good[:10])
    with pytest.raises(wd.WorkdirError, match="aux.msgpack is damaged"):
        _run(cfg, tmp_path / "w")
    os.remove(aux)
    with pytest.raises(wd.WorkdirError, match="aux.msgpack is missing.*not silently restart"):
        _run(cfg, tmp_path / "w")
    aux.write_bytes(good)
    conf = tmp_path / "w" / "config.json"
    conf.write_text(conf.read_text()[:40])
    with pytest.raises(wd.WorkdirError, match="config.json is damaged"):
        _run(cfg, tmp_path / "w")


def test_damaged_synthetic_is_named_by_evaluate(tmp_path):
    bad = tmp_path / "synthetic.msgpack"
    bad.write_bytes(b"\x85\xa5param\xa5pix")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "evaluate.py"),
                        f"--synthetic={bad}", "--num_nets=0"], capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=120, env=_env())
    assert r.returncode != 0
    assert "damaged or not a synthetic.msgpack" in r.stderr and "--num_nets=0" in r.stderr
    assert "Traceback" not in r.stderr


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("JAX_PLATFORMS", "cpu")
    return env


# ----------------------------------------------------------------------------- 4


def test_one_validation_pass_reports_every_problem(tmp_path, npz_path):
    cfg = tiny_cfg(npz_path)
    cfg.param.ipc = 0
    cfg.objective.syn_steps = 0
    cfg.checkpoint_every = 0
    cfg.buffer.num_experts = 0
    cfg.dataset.resolution = 0
    cfg.objective.max_start_epoch = 5  # + expert_epochs 1 > buffer.epochs 2
    with pytest.raises(validate.ConfigError) as e:
        distill.Run(cfg, str(tmp_path / "w"), progress=False)
    msg = str(e.value)
    for field in ("param.ipc=0", "objective.syn_steps=0", "checkpoint_every=0",
                  "buffer.num_experts=0", "dataset.resolution=0", "exceeds the experts' 2"):
        assert field in msg, field
    assert len(e.value.problems) == 6
    assert not os.path.exists(tmp_path / "w")  # nothing written


def test_npz_problems_all_at_once(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(31, 8, 8, 1)).astype(np.float32)
    x[3, 0, 0, 0] = np.nan
    x[5, 1, 1, 0] = np.inf
    y = np.repeat(np.arange(3), 10)
    y = np.concatenate([y, [57]]).astype(np.int32)
    p = str(tmp_path / "bad.npz")
    np.savez(p, images=x, labels=y)
    rep = validate.npz_file(p)
    text = "\n".join(rep.errors)
    assert "2 NaN/inf pixel value(s) in 2 image(s)" in text
    assert "stray label(s) 57 (1 image(s))" in text and "58 classes" in text
    cfg = tiny_cfg(p)
    with pytest.raises(validate.ConfigError) as e:
        distill.Run(cfg, str(tmp_path / "w"), progress=False)
    assert len(e.value.problems) == 2


def test_empty_classes_ipc_warning_and_network_resolution(tmp_path, capsys):
    from jaxdd.data import load_dataset
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 8, 8, 1)).astype(np.float32)
    y = np.array([0] * 20 + [2] * 18 + [3] * 2, np.int32)  # class 1 empty, class 3 has 2
    p = str(tmp_path / "gap.npz")
    np.savez(p, images=x, labels=y, test_images=x[:8], test_labels=np.arange(8) % 4)
    train, test = load_dataset(p)
    rep = validate.data(train, test, ipc=5)
    assert any("1 of 4 classes have no images: 1" in e for e in rep.errors)
    assert any("IPC 5 is larger" in w and "3 (2)" in w for w in rep.warnings)
    # VGG11 cannot pool 16 x 16 images down five times: the hint names --resolution=32
    msg = validate.model_at_resolution("VGG11", {}, (16, 16, 3), 10)
    assert "--resolution=32" in msg and "cannot run on 16x16" in msg
    assert validate.model_at_resolution("ConvNetD2W32", {}, (16, 16, 1), 10) is None


def test_evaluate_and_buffer_args():
    rep = validate.evaluate_args(num_nets=0, epochs=0)
    assert len(rep.errors) == 2
    b = C.buffer_config("digits,num_experts=0,epochs=0")
    assert len(validate.buffer_config(b).errors) == 2


def test_every_shipped_config_validates():
    import glob
    import importlib.util
    for path in sorted(glob.glob(os.path.join(ROOT, "configs", "*.py"))):
        name = os.path.basename(path)[:-3]
        spec = importlib.util.spec_from_file_location(f"_v_{name}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for v in [None] + list(getattr(mod, "VARIANTS", [])):
            cfg = mod.get_config(v)
            if name == "buffer":
                rep = validate.buffer_config(cfg)
            elif "param" in cfg:
                rep = validate.distill_config(cfg)
            else:
                continue
            assert not rep.errors, (name, v, rep.errors)


# ----------------------------------------------------------------------------- 5


def test_negative_syn_lr_stops_like_nan(tmp_path, npz_path):
    cfg = tiny_cfg(npz_path)
    cfg.opt.lr.lr = 1e-5
    cfg.opt.lr.nonpositive_patience = 2
    run = _run(cfg, tmp_path / "w", obj=toy(lr_push=1e4, learn_lr=True))
    with pytest.raises(guards.DivergenceError, match="syn_lr .* not positive for 2 "):
        run.train()
    assert run.ckpt.latest_step() == 0  # no state with syn_lr <= 0 was checkpointed
    # a dip of two iterations (within the patience, 25 by default) is tolerated, as in
    # MTT; the checkpoints of those iterations wait until syn_lr is positive again
    cfg = tiny_cfg(npz_path)
    cfg.opt.lr.lr = 1e-5
    run = _run(cfg, tmp_path / "dip", obj=toy(lr_push=1e4, learn_lr=True, lr_dip=True))
    run.train()
    syn_lr = [r["syn_lr"] for r in wd.read_metrics(tmp_path / "dip" / "metrics.jsonl")]
    assert syn_lr[0] < 0 and syn_lr[1] < 0 and syn_lr[2] > 0
    assert run.ckpt.all_steps() == [0, 3]
    # a floor (opt.lr.min_syn_lr, not in MTT) keeps it positive: the run goes through
    cfg.opt.lr.min_syn_lr = 1e-4
    run = _run(cfg, tmp_path / "floor", obj=toy(lr_push=1e4, learn_lr=True))
    run.train()
    assert float(run.state.syn_lr) == pytest.approx(1e-4)


def test_exploding_images_stop_and_keep_the_last_good_checkpoint(tmp_path, npz_path):
    cfg = tiny_cfg(npz_path)
    cfg.iterations = 4
    cfg.max_image_rms_ratio = 100.0  # the default (1e4) leaves room for NSD's large decodes
    run = _run(cfg, tmp_path / "w", obj=toy(explode_from=2))
    with pytest.raises(guards.DivergenceError, match="exploded: RMS"):
        run.train()
    assert run.ckpt.latest_step() == 2 and int(run.state.step) == 2
    assert run.image_rms() < 10 * run.real_rms


# ----------------------------------------------------------------------------- 7


def test_no_progress_silences_the_ddif_warmup_bar(tmp_path, npz_path, capfd):
    from jaxdd.param import ddif
    cfg = tiny_cfg(npz_path)
    cfg.param = ddif.default_config()
    cfg.param.update(dict(name="ddif", ipc=1, width=4, num_layers=2, warmup_steps=3,
                          warmup_chunk=3))
    cfg.opt.syn.lr = 1e-3
    _run(cfg, tmp_path / "w")
    err = capfd.readouterr().err
    assert "warm-up" not in err


def test_missing_experts_message_and_npz_buffer_location(tmp_path, npz_path):
    from jaxdd import experts
    with pytest.raises(experts.MissingExpertsError) as e:
        experts.load_trajectories(str(tmp_path / "nothing"), num_experts=2, epochs=1)
    assert "run the distill command" not in str(e.value)
    b = C.buffer_for(tiny_cfg(os.path.abspath(npz_path)))
    assert b.buffer_dir.startswith(os.path.join(os.getcwd(), "buffers") + os.sep)
    assert not b.buffer_dir.startswith(os.path.dirname(os.path.abspath(npz_path)))
    assert C.default_buffer_dir(b.dataset, b.model.name) == os.path.relpath(b.buffer_dir,
                                                                         os.getcwd())


def test_build_buffer_leaves_no_dir_when_data_is_missing(tmp_path):
    from jaxdd import experts
    cfg = C.buffer_config("digits,num_experts=1,epochs=1")
    cfg.dataset.name = str(tmp_path / "absent.npz")
    with pytest.raises(FileNotFoundError):
        experts.build_buffer(str(tmp_path / "buf"), cfg, progress=False)
    assert not os.path.exists(tmp_path / "buf")


def test_download_field_reaches_load_dataset(monkeypatch, npz_path):
    import jaxdd.data
    seen = {}

    def fake(name, **kw):
        seen.update(kw)
        raise RuntimeError("stop")

    monkeypatch.setattr(jaxdd.data, "load_dataset", fake)
    cfg = tiny_cfg(npz_path)
    assert cfg.dataset.download is False
    cfg.dataset.download = True
    with pytest.raises(RuntimeError):
        assemble.data(cfg)
    assert seen["download"] is True


def test_model_overrides_from_the_command_line():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "_tm_pixel", os.path.join(ROOT, "configs", "tm_pixel.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = mod.get_config("digits,model.overrides.gray_padding=True")
    assert cfg.model.overrides.gray_padding is True
    argv, ov = C.pop_model_override_flags(
        ["distill.py", "--config=x.py", "--config.model.overrides.gray_padding=True",
         "--config.model.overrides.width", "64", "--workdir=w"])
    assert argv == ["distill.py", "--config=x.py", "--workdir=w"]
    assert ov == {"gray_padding": True, "width": 64}
    cfg = C.apply_model_overrides(mod.get_config(None), ov)
    assert dict(cfg.model.overrides) == {"gray_padding": True, "width": 64}
    assert not validate.distill_config(cfg).errors


def test_distill_command_takes_model_overrides_and_reports_problems(tmp_path):
    """The distill command: --config.model.overrides.* reaches the model (an unknown
    keyword is reported with the other problems); no traceback, nothing written."""
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "launch", "distill.py"),
         f"--config={os.path.join(ROOT, 'configs', 'tm_pixel.py')}",
         "--config.model.overrides.no_such_option=1", "--config.param.ipc=0",
         f"--workdir={tmp_path / 'w'}", "--no_progress"],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=300, env=_env())
    assert r.returncode != 0
    assert "no_such_option" in r.stderr and "param.ipc=0" in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert not os.path.exists(tmp_path / "w" / "config.json")
