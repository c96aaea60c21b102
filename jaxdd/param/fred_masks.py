"""FreD's class masks: which frequency positions of a class are kept (any grid rank).

``build_masks`` scores every position of a class's coefficients (n, *grid, C) and keeps the
k best, the same positions for all channels and all instances of the class (the authors'
``SynSet.init_mask``: the scores are computed on the channel MEAN, so one mask per class;
``msz_per_channel`` = k positions per channel). Strategies:

  'evr'       explained-variance ratio (the paper; sdh0818/FreD @ 9f35a7a,
              TM/main_TM_FreD.py:75-99 for images, 3D-MNIST/main_DM_FreD.py:75-96 for
              voxels, the same rule on a flattened (D*H*W) grid): average the class's
              coefficients over channels -> (n, prod(grid)); eta = var per position / total
              var (= diag(cov)/trace(cov); the authors' identity-vector loop is vectorized
              here); top k. Float64 here (the authors: float32), so the ranking is identical
              except at float32 near-ties.
  'lowpass'   the k lowest frequencies (``transforms_nd.lowpass_rank_nd``).
  'random'    k random positions per class (from the PRNG key).
  'amplitude' top k of mean |coef| over the class's instances and channels.
Ties (exactly equal scores, e.g. one instance per class) are broken toward low frequencies.
"""
from __future__ import annotations

from typing import Optional, Sequence

import jax
import numpy as np

from jaxdd.param import transforms_nd

MASK_STRATEGIES = ("evr", "lowpass", "random", "amplitude")


def explained_variance_ratio(coefs: np.ndarray) -> np.ndarray:
    """EVR per position of one class's coefficients.

    coefs: (n, *grid, C). Averages over channels -> (n, prod(grid)); returns (*grid) with
    var_p / sum_p var_p (= diag(cov) / trace(cov); the ddof cancels). Zero total variance
    (e.g. n = 1) gives all zeros.
    """
    a = np.asarray(coefs, dtype=np.float64)
    n, grid = a.shape[0], a.shape[1:-1]
    a = a.mean(axis=-1).reshape(n, int(np.prod(grid)))
    var = a.var(axis=0)
    tot = var.sum()
    evr = var / tot if tot > 0 else np.zeros_like(var)
    return evr.reshape(grid)


def _top_k_mask(score: np.ndarray, k: int, tiebreak: np.ndarray) -> np.ndarray:
    """(*grid) float32 0/1 with ones at the k largest scores (ties -> lower tiebreak rank)."""
    order = np.lexsort((tiebreak.ravel(), -score.ravel()))
    m = np.zeros(score.size, dtype=np.float32)
    m[order[:k]] = 1.0
    return m.reshape(score.shape)


def build_masks(
    coefs_by_class: Sequence[np.ndarray],
    k: int,
    strategy: str = "evr",
    key: Optional[jax.Array] = None,
    *,
    transform: str = "dct",
    dwt_levels: int = 1,
) -> np.ndarray:
    """Class-wise binary masks; a standalone pure function (time it to report mask cost).

    coefs_by_class: list (classes) of (n_c, *grid, C) coefficient arrays (numpy or jax).
    k: positions kept per class. strategy: 'evr' | 'lowpass' | 'random' | 'amplitude'.
    key: PRNG key (required for 'random': i.i.d. uniform scores per class and position).
    transform, dwt_levels: define the low-pass order (used by 'lowpass' and to break ties).
    Returns numpy float32 (classes, *grid) with exactly k ones per class.
    """
    if strategy not in MASK_STRATEGIES:
        raise ValueError(f"unknown FreD mask {strategy!r}; choose from {MASK_STRATEGIES}")
    if not len(coefs_by_class):
        raise ValueError("build_masks: no classes")
    grid = tuple(int(s) for s in np.shape(coefs_by_class[0])[1:-1])
    size = int(np.prod(grid))
    if not 1 <= k <= size:
        raise ValueError(f"build_masks: k = {k} must be in [1, prod(grid {grid}) = {size}]")
    rank = transforms_nd.lowpass_rank_nd(transform, grid, levels=max(int(dwt_levels), 1))
    masks = np.zeros((len(coefs_by_class),) + grid, dtype=np.float32)
    if strategy == "random":
        if key is None:
            raise ValueError("build_masks: strategy 'random' needs a PRNG key")
        # i.i.d. uniform scores: their top k is a uniformly random k-subset per class
        rand = np.asarray(jax.random.uniform(key, (len(coefs_by_class),) + grid), np.float64)
    for c, coefs in enumerate(coefs_by_class):  # per-class work is vectorized
        coefs = np.asarray(coefs)
        if strategy == "evr":
            score = explained_variance_ratio(coefs)
        elif strategy == "lowpass":
            score = -rank.astype(np.float64)
        elif strategy == "amplitude":
            score = np.abs(coefs.astype(np.float64)).mean(axis=(0, coefs.ndim - 1))
        else:  # random
            score = rand[c]
        masks[c] = _top_k_mask(score, k, rank)
    return masks
