"""Parity: ZCA whitening against kornia's ZCAWhitening as the authors use it (issue 13
item 1). Fixture: tests/parity/make_zca.py (kornia on [0, 1] pixels, eps 0.1, fitted on the
train split, applied to train and test). jaxdd is fed the same uint8 images through
load_dataset('npz', zca=True), i.e. the whole pipeline: uint8 / 255, NO mean/std, ZCA fit on
the train split, applied to both splits.

Tolerances: the whitening involves an eigendecomposition (kornia: float32 SVD of the
covariance; jaxdd: float64 eigh on CPU or float32 eigh with the jax backend, stored float32).
With eps = 0.1 and covariance eigenvalues <= 0.56 here, W = (Sigma + eps I)^(-1/2) has
condition number <= 2.6, so only float32 round-off remains: measured max abs difference on
outputs of magnitude ~1 is 7.2e-7 (numpy backend) / 1.4e-6 (jax backend). Bound: rtol 1e-5,
atol 5e-6.

The eps is the authors' (``authors_eps``: the generator reads it from every
``ZCAWhitening(eps=...)`` call of mtt-distillation, FreD and DDiF at the pinned commits,
``zca_calls``), never a number typed here; and the CONFIGS are held to it: every config
variant that uses ZCA (configs/*.py VARIANTS, built with their ``get_config`` as
launch/settings_table.py does, and the expert-buffer variants of configs/buffer.py) must
carry ``dataset.zca_eps`` = the authors' eps, and its dataset block, mapped to
``load_dataset`` by ``jaxdd.assemble.dataset_kwargs`` (the run assembly's one mapping),
must whiten the fixture's images as kornia did.
"""
import glob
import importlib.util
import json
import os

import numpy as np
import pytest

from jaxdd import assemble
from jaxdd import config as C
from jaxdd.data import fit_zca, load_dataset, preprocessing_id
from parity.common import PINNED, load_fixture

RTOL, ATOL = 1e-5, 5e-6
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FX = load_fixture("zca")
EPS = float(FX["authors_eps"])


@pytest.fixture(scope="module")
def fx():
    return FX


def _config_module(name):
    spec = importlib.util.spec_from_file_location(f"_zca_cfg_{name}",
                                                  os.path.join(ROOT, "configs", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _zca_variants():
    """[(config, variant)] of every published variant whose dataset block has zca on: the
    VARIANTS of every configs/*.py that lists them (the settings-table convention,
    jaxdd.published) and the expert-buffer variants (configs/buffer.py ->
    jaxdd.config.buffer_config)."""
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "configs", "*.py"))):
        name = os.path.basename(path)[:-3]
        mod = _config_module(name)
        for v in getattr(mod, "VARIANTS", None) or ():
            if mod.get_config(v).dataset.get("zca", False):
                out.append((name, v))
    out += [("buffer", v) for v in C.BUFFER_VARIANTS if C.buffer_config(v).dataset.zca]
    return out


ZCA_VARIANTS = _zca_variants()


def _variant_config(name, variant):
    if name == "buffer":
        return C.buffer_config(variant)
    return _config_module(name).get_config(variant)


def _nhwc(x):
    return np.transpose(x, (0, 2, 3, 1))


def _chw_perm(h, w, c):
    """perm[i] = HWC-flat index of the i-th CHW-flat feature (kornia's order)."""
    return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)


@pytest.mark.parametrize("case", ["a", "b"])
def test_zca_pipeline_matches_kornia(fx, case, tmp_path):
    tr_u8, te_u8 = fx[f"{case}_train_u8"], fx[f"{case}_test_u8"]
    n_tr = len(tr_u8)
    path = tmp_path / "zca_case.npz"
    np.savez(path, images=_nhwc(tr_u8), labels=np.arange(n_tr) % 2,
             test_images=_nhwc(te_u8), test_labels=np.arange(len(te_u8)) % 2)
    tr, te = load_dataset("npz", path=path, zca=True, zca_eps=EPS)
    assert tr.preprocessing == f"zca01-eps{EPS:g}"
    np.testing.assert_array_equal(tr.mean, 0.0)  # no standardization before ZCA
    np.testing.assert_array_equal(tr.std, 1.0)
    np.testing.assert_allclose(tr.images, _nhwc(fx[f"{case}_train_zca"]), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(te.images, _nhwc(fx[f"{case}_test_zca"]), rtol=RTOL, atol=ATOL)
    # the fitted matrices are kornia's up to the feature permutation CHW -> HWC
    perm = _chw_perm(4, 4, 3)
    np.testing.assert_allclose(tr.zca.mean[perm], fx[f"{case}_mean"], rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(tr.zca.W[np.ix_(perm, perm)], fx[f"{case}_T"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(tr.zca.W_inv[np.ix_(perm, perm)], fx[f"{case}_T_inv"],
                               rtol=RTOL, atol=ATOL)
    # inverse (kornia's inverse_transform) and jaxdd's denormalize (inverse, clip to [0, 1])
    np.testing.assert_allclose(tr.zca.inverse(tr.images), _nhwc(fx[f"{case}_train_inverse"]),
                               rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(tr.denormalize(tr.images), _nhwc(tr_u8) / 255.0, atol=ATOL)


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_zca_backends_match_kornia(fx, backend):
    x = _nhwc(fx["a_train_u8"]).astype(np.float32) / np.float32(255.0)
    z = fit_zca(x, eps=EPS, backend=backend)
    np.testing.assert_allclose(z.transform(x), _nhwc(fx["a_train_zca"]), rtol=RTOL, atol=ATOL)


def test_old_pipeline_differs(fx, tmp_path):
    """The old jaxdd pipeline (standardize, then ZCA) is NOT the authors': it is refused by
    expert-buffer metadata and must not reproduce kornia's numbers."""
    tr_u8 = fx["a_train_u8"]
    path = tmp_path / "zca_old.npz"
    np.savez(path, images=_nhwc(tr_u8), labels=np.arange(len(tr_u8)) % 2)
    old, _ = load_dataset("npz", path=path, zca=True, normalize=True)
    assert old.preprocessing == "standardize-train-stats+zca-eps0.1"
    new, _ = load_dataset("npz", path=path, zca=True)
    assert new.preprocessing == "zca01-eps0.1"
    assert np.abs(old.images - new.images).max() > 0.1


def test_fixture_eps_is_every_authors_call(fx):
    """The fixture's eps is the one of every ZCAWhitening call the authors make (MTT's
    get_dataset, used by buffer.py and distill.py; FreD TM; DDiF TM/DM/DC), read from their
    source at the pinned commits."""
    calls = json.loads(str(fx["zca_calls"]))
    assert {c["repository"] for c in calls} == {"GeorgeCazenavette/mtt-distillation",
                                                "sdh0818/FreD", "aailab-kaist/DDiF"}
    assert ("GeorgeCazenavette/mtt-distillation", "utils.py") in {
        (c["repository"], c["path"]) for c in calls}
    for c in calls:
        assert c["commit"] == PINNED[c["repository"]], c
        assert c["eps"] == EPS, c
    assert fx["meta"]["commit"] == PINNED["GeorgeCazenavette/mtt-distillation"]


def test_zca_variants_cover_the_published_families():
    """The check below is not vacuous: MTT's and DDiF's ZCA rows and the CIFAR buffers."""
    names = {n for n, _ in ZCA_VARIANTS}
    assert {"tm_pixel", "tm_ddif", "buffer"} <= names, ZCA_VARIANTS
    assert ("tm_pixel", "cifar10,ipc=10") in ZCA_VARIANTS
    assert ("buffer", "cifar10") in ZCA_VARIANTS


_LOADED: dict = {}


def _load_through_config(dataset_block, case, tmp_dir):
    """(train, test) of the fixture's case, loaded with the config's dataset block as the
    run assembly maps it (`assemble.dataset_kwargs`); only where the data live (an npz of
    the fixture's images, native 4x4: no resize) is replaced."""
    kw = assemble.dataset_kwargs(dataset_block)
    real_name = kw.pop("name")
    kw.update(resolution=None, data_dir=None, download=False)
    key = (case, json.dumps(kw, sort_keys=True, default=str))
    if key not in _LOADED:
        tr_u8, te_u8 = FX[f"{case}_train_u8"], FX[f"{case}_test_u8"]
        path = os.path.join(tmp_dir, f"zca_cfg_{case}_{len(_LOADED)}.npz")
        np.savez(path, images=_nhwc(tr_u8), labels=np.arange(len(tr_u8)) % 2,
                 test_images=_nhwc(te_u8), test_labels=np.arange(len(te_u8)) % 2)
        _LOADED[key] = load_dataset("npz", path=path, **kw)
    return real_name, kw, _LOADED[key]


@pytest.mark.parametrize("config,variant", ZCA_VARIANTS,
                         ids=[f"{n}:{v}" for n, v in ZCA_VARIANTS])
def test_config_zca_is_the_authors(config, variant, tmp_path_factory):
    """Every ZCA variant: dataset.zca_eps is the authors' eps, its preprocessing on the
    real dataset is ZCA on [0, 1] pixels (no mean/std first), and the data its dataset
    block loads are kornia's whitened images."""
    cfg = _variant_config(config, variant)
    assert cfg.dataset.zca_eps == EPS, (
        f"{config}:{variant} dataset.zca_eps = {cfg.dataset.zca_eps}, the authors' "
        f"ZCAWhitening(eps={EPS})")
    tmp = str(tmp_path_factory.getbasetemp())
    for case in ("a", "b"):
        real_name, kw, (tr, te) = _load_through_config(cfg.dataset, case, tmp)
        assert preprocessing_id(real_name, zca=kw["zca"], zca_eps=kw["zca_eps"],
                                normalize=kw["normalize"], stats=kw["stats"],
                                resize=kw["resize"]) == f"zca01-eps{EPS:g}"
        assert tr.preprocessing == f"zca01-eps{EPS:g}"
        np.testing.assert_allclose(tr.images, _nhwc(FX[f"{case}_train_zca"]), rtol=RTOL,
                                   atol=ATOL, err_msg=f"{config}:{variant} train, case {case}")
        np.testing.assert_allclose(te.images, _nhwc(FX[f"{case}_test_zca"]), rtol=RTOL,
                                   atol=ATOL, err_msg=f"{config}:{variant} test, case {case}")
