"""Configs are data (jaxdd.config, jaxdd.published) and every dataset gets a config.

* importing jaxdd.config imports no objective, parameterization, loop or expert code, and
  building any config imports no objective / loop / expert code either (checked in a fresh
  interpreter: sys.modules);
* jaxdd.published never imports jaxdd.config (one direction: config reads published);
* the objective blocks the builders write as plain data equal the objectives' own
  default_config(), and DC's loops are one table (jaxdd.published.dc);
* a (dataset, ipc) without a published setting -- MNIST IPC 1, FashionMNIST IPC 10,
  CIFAR-100 IPC 1 where it is not published, an npz file of its own shape -- gets a derived
  config from every config file: it builds, its storage budget stays within IPC x classes x
  H x W x C (counted from the config's fields, and with pm.budget on the npz file's tiny
  shape), and cfg.source says "derived, not published"; published variants never do.
"""
import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxdd import config as C
from jaxdd.config import derive
from jaxdd.published import DERIVED

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORBIDDEN = ("jaxdd.objective", "jaxdd.param", "jaxdd.distill", "jaxdd.experts")
NAMES = [f"{o}_{p}" for o in ("tm", "dm", "dc", "cfm") for p in ("pixel", "fred", "ddif", "nsd")]


def _mod(name):
    spec = importlib.util.spec_from_file_location(
        f"_data_{name}", os.path.join(ROOT, "configs", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fresh(code: str) -> dict:
    """Run `code` in a fresh interpreter; -> the json it prints last."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _loaded(prefixes):
    return ("import json, sys\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))")


def test_importing_config_imports_no_objective_param_loop_or_experts():
    got = _fresh("import jaxdd.config\nfrom jaxdd import config\n"
                 "assert callable(config.tm_config)\n" + _loaded(FORBIDDEN))
    assert got == [], f"importing jaxdd.config imported {got}: configs must be data"


def test_building_configs_imports_no_objective_loop_or_experts():
    """Building every config (the parameterization's own block may be read: jaxdd.param)."""
    code = ("import importlib.util, os\n"
            f"for n in {NAMES + ['buffer']!r}:\n"
            "    spec = importlib.util.spec_from_file_location(n, os.path.join('configs', n + '.py'))\n"
            "    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "    for v in [None, 'cifar10,ipc=7', 'mnist,ipc=1'] if n != 'buffer' else [None]:\n"
            "        m.get_config(v)\n" + _loaded(("jaxdd.objective", "jaxdd.distill",
                                                  "jaxdd.experts")))
    got = _fresh(code)
    assert got == [], f"building configs imported {got}: configs must be data"


def test_published_never_imports_config():
    got = _fresh("import jaxdd.published\n"
                 "from jaxdd.published import dc, ddif, dm, fred, mtt, nsd\n"
                 + _loaded(("jaxdd.config",) + FORBIDDEN))
    assert got == []


def test_objective_blocks_are_the_objectives_defaults():
    from jaxdd.config import cfm as config_cfm
    from jaxdd.config import matching
    from jaxdd.objective import cfm, dc, dm
    from jaxdd.published import dc as published_dc

    assert matching.objective_block("dm").to_dict() == dm.default_config().to_dict()
    assert matching.objective_block("dc").to_dict() == dc.default_config().to_dict()
    assert config_cfm.objective_block().to_dict() == cfm.default_config().to_dict()
    assert dc.DC_LOOPS is published_dc.LOOPS
    assert dc.get_loops(10) == published_dc.loops(10) == (10, 50)
    with pytest.raises(ValueError, match="outer/inner"):
        published_dc.loops(3)


def test_start_returns_named_fields():
    s = C.start("pixel", "cifar10,ipc=10,iterations=3")
    assert (s.dataset, s.ipc, s.overrides) == ("cifar10", 10, {"ipc": 10, "iterations": 3})
    assert s.cfg.param.name == "pixel" and s.cfg.param.ipc == 10


def test_config_modules_stay_small():
    pkg = os.path.join(ROOT, "jaxdd", "config")
    for f in sorted(os.listdir(pkg)):
        if f.endswith(".py"):
            with open(os.path.join(pkg, f)) as fh:
                assert len(fh.read().splitlines()) < 500, f


# ----------------------------------------------------------------------------- npz datasets

def _write_npz(path, shape=(12, 12, 3), classes=4, per_class=6, test_classes=None):
    rng = np.random.default_rng(0)
    n = classes * per_class
    arrays = dict(images=rng.integers(0, 256, (n, *shape), dtype=np.uint8),
                  labels=np.repeat(np.arange(classes), per_class))
    if test_classes is not None:
        arrays.update(test_images=arrays["images"][:test_classes],
                      test_labels=np.arange(test_classes))
    np.savez(path, **arrays)
    return str(path)


def test_npz_shape_and_classes_from_the_header(tmp_path):
    p = _write_npz(tmp_path / "a.npz", shape=(12, 12, 3), classes=4)
    assert C.info(p)["shape"] == (12, 12, 3) and C.info(p)["num_classes"] == 4
    assert C.info(p)["model"] == "ConvNetD2"
    g = _write_npz(tmp_path / "g.npz", shape=(28, 28), classes=3, test_classes=5)
    assert C.info(g)["shape"] == (28, 28, 1) and C.info(g)["num_classes"] == 5
    assert C.info(g)["model"] == "ConvNetD3"
    with pytest.raises(FileNotFoundError):
        C.info(str(tmp_path / "missing.npz"))
    cfg = _mod("tm_pixel").get_config(f"{p},ipc=2")
    assert cfg.dataset.name == p and cfg.param.ipc == 2 and cfg.model.name == "ConvNetD2"
    assert "/" not in C.default_workdir(f"configs/tm_pixel.py:{p},ipc=2")[len("workdirs/"):]
    with pytest.raises(ValueError, match="unknown dataset variant"):
        C.parse_arg("cifar11")


# ----------------------------------------------------------------------------- derivation

def test_nearest_published_row_of_the_same_shape():
    from jaxdd.published import mtt

    assert derive.nearest(mtt.TABLE, "cifar10", 2) == ("cifar10", 1)
    assert derive.nearest(mtt.TABLE, "cifar100", 20) == ("cifar100", 10)
    assert derive.nearest(mtt.TABLE, "svhn_cropped", 7) == ("cifar10", 10)  # 10 classes
    assert derive.nearest(mtt.TABLE, "imagenette", 50) == ("imagenette", 10)
    assert derive.nearest(mtt.TABLE, "mnist", 1) is None  # no 28x28x1 row: digits default
    assert derive.dc_loops(10, {1: (1, 1), 10: (10, 50)}) is None
    assert derive.dc_loops(7, {1: (1, 1), 10: (10, 50)}) == (10, 50)


def test_fred_digits_rule_reproduces_the_digits_setting():
    shape = C.info("digits")["shape"]
    assert derive.fred_k(shape) == 64
    for obj, lr in (("tm", 1000.0), ("dm", 100.0), ("dc", 1.0)):
        assert derive.fred_lr(obj, shape) == lr * 4 * 16 * 16


def _budget_from_fields(cfg, ipc, shape):
    """Stored floats per class, computed from the config's parameterization fields."""
    from jaxdd.param import ddif, fred, nsd

    h, w, c = shape
    p = cfg.param
    if p.name == "pixel":
        return ipc * h * w * c
    if p.name == "fred":
        return fred.num_per_class(ipc, h, w, p.k) * p.k * c
    if p.name == "ddif":
        b = ddif.params_per_field(p, shape)
        return ddif.fields_per_class(ipc, shape, b, int(p.get("fields_per_class", 0))) * b
    if p.name == "nsd":
        return nsd.choose_sizes(ipc, shape, n_t=p.n_t, n_k=p.n_k, u1=p.u1, t1=p.t1, t2=p.t2,
                                t3=p.t3, t4=p.t4,
                                count_kernels=bool(p.learn_kernels))["per_class_floats"]
    raise AssertionError(p.name)


CASES = ["mnist,ipc=1", "fashion_mnist,ipc=10", "NPZ,ipc=1", "cifar100,ipc=1"]


@pytest.fixture(scope="module")
def npz12(tmp_path_factory):
    return _write_npz(tmp_path_factory.mktemp("npz") / "shape12.npz", shape=(12, 12, 3))


@pytest.mark.parametrize("name", NAMES)
def test_every_config_serves_unpublished_datasets(name, npz12):
    mod = _mod(name)
    variants = set(getattr(mod, "VARIANTS", []))
    for case in CASES:
        arg = case.replace("NPZ", npz12)
        dataset, ipc = arg.split(",")[0], int(arg.split("=")[1])
        cfg = mod.get_config(arg)
        assert cfg.param.ipc == ipc
        info = C.info(dataset)
        shape, classes = tuple(info["shape"]), info["num_classes"]
        per_class = _budget_from_fields(cfg, ipc, shape)
        assert 0 < per_class * classes <= ipc * classes * math.prod(shape), (name, arg)
        if case in variants:
            assert not cfg.source.startswith(DERIVED), (name, arg, cfg.source)
        else:
            assert cfg.source.startswith(f"{DERIVED}: "), (name, arg, cfg.source)


def test_derived_npz_sets_count_within_the_budget(npz12):
    """pm.init + pm.budget on the npz file's tiny shape, one init per distinct field set."""
    import jax

    from jaxdd import param as pm
    from jaxdd.data import load_dataset

    train, _ = load_dataset(npz12)
    by_class = [np.asarray(train.images)[np.asarray(train.labels) == c]
                for c in range(train.num_classes)]
    limit = 1 * train.num_classes * math.prod(train.image_shape)
    seen = set()
    for name in NAMES:
        pcfg = _mod(name).get_config(f"{npz12},ipc=1").param
        if pcfg.name == "ddif":
            pcfg.warmup_steps, pcfg.progress = 0, False  # the count, not the fit
        key = json.dumps(pcfg.to_dict(), sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        mod = pm.get(pcfg.name)
        params, aux = mod.init(jax.random.PRNGKey(0), by_class, pcfg)
        assert 0 < mod.budget(params, aux) <= limit, (name, key)
    assert {json.loads(k)["name"] for k in seen} == {"pixel", "fred", "ddif", "nsd"}
