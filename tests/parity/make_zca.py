"""Parity fixture for ZCA whitening (issue 13 item 1): kornia's ZCAWhitening as the authors
call it, on tiny deterministic [0, 1] images.

    python tests/parity/make_zca.py --ref=/work/ref/mtt-distillation

What the authors do with --zca (mtt-distillation utils.py; the same lines in FreD
TM/utils.py and DDiF TM/utils.py):
  * utils.py:58-59 (CIFAR10; 74-75 Tiny, 125-126 CIFAR100): transform = ToTensor() only,
    i.e. pixels uint8 / 255 in [0, 1], NO Normalize;
  * utils.py:137-149: stack the whole train split (NCHW float32), then
    zca = K.enhance.ZCAWhitening(eps=0.1, compute_inv=True); zca.fit(images);
    zca_images = zca(images)
  * utils.py:152-163: stack the test split and apply the SAME fitted zca (no refit);
  * utils.py:175-178 (TensorDataset): .detach().float() -- stays float32, no clamping.
  * distill.py / main_TM.py save images through zca.inverse_transform.
Those inline lines of get_dataset are re-stated below (the function itself needs torchvision
datasets); the ZCA is kornia's own class. Two cases:
  'a': 64 train / 16 test images of 4x4x3 (D = 48 features, N > D);
  'b': 20 train / 8 test images of 4x4x3 (N < D: a rank-deficient covariance).
Stored NCHW like the authors' tensors; the test transposes to jaxdd's NHWC.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity.common import add_reference_path, save_fixture  # noqa: E402


def _images(rng, n):
    """Deterministic uint8 NCHW images with correlated pixels (smooth field + noise)."""
    base = rng.normal(size=(n, 3, 2, 2))
    up = base.repeat(2, axis=2).repeat(2, axis=3)  # 4x4, spatially correlated
    mix = np.array([[1.0, 0.6, 0.3], [0.6, 1.0, 0.6], [0.3, 0.6, 1.0]])  # channel correlation
    x = np.einsum("dc,nchw->ndhw", mix, up) + 0.4 * rng.normal(size=(n, 3, 4, 4))
    x = 128 + 40 * x
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", default="/work/ref/mtt-distillation")
    args = ap.parse_args()
    add_reference_path(args.ref)  # records the repository; kornia is the authors' dependency
    import kornia as K
    import torch

    rng = np.random.default_rng(20261201)
    out = {}
    for case, (n_tr, n_te) in {"a": (64, 16), "b": (20, 8)}.items():
        tr_u8, te_u8 = _images(rng, n_tr), _images(rng, n_te)
        # ToTensor(): uint8 -> float32 / 255 (utils.py:59); stacked (utils.py:141-145)
        tr = torch.from_numpy(tr_u8).float().div(255)
        te = torch.from_numpy(te_u8).float().div(255)
        zca = K.enhance.ZCAWhitening(eps=0.1, compute_inv=True)  # utils.py:147
        zca.fit(tr)                                               # utils.py:148
        ztr = zca(tr).detach().float()                            # utils.py:149, 177
        zte = zca(te).detach().float()                            # utils.py:162
        inv = zca.inverse_transform(ztr).detach().float()
        out.update({
            f"{case}_train_u8": tr_u8, f"{case}_test_u8": te_u8,
            f"{case}_train_zca": ztr.numpy(), f"{case}_test_zca": zte.numpy(),
            f"{case}_train_inverse": inv.numpy(),
            f"{case}_mean": zca.mean_vector.numpy().reshape(-1),
            f"{case}_T": zca.transform_matrix.numpy(),
            f"{case}_T_inv": zca.transform_inv.numpy(),
        })
    save_fixture("zca", repo="GeorgeCazenavette/mtt-distillation (+ kornia "
                 f"{K.__version__})", ref=args.ref, script=__file__, **out)


if __name__ == "__main__":
    main()
