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
"""
import numpy as np
import pytest

from jaxdd.data import fit_zca, load_dataset
from parity.common import load_fixture

RTOL, ATOL = 1e-5, 5e-6


@pytest.fixture(scope="module")
def fx():
    return load_fixture("zca")


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
    tr, te = load_dataset("npz", path=path, zca=True, zca_eps=0.1)
    assert tr.preprocessing == "zca01-eps0.1"
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
    z = fit_zca(x, eps=0.1, backend=backend)
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
