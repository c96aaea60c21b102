"""ZCA whitening with the semantics of kornia's ``ZCAWhitening`` (as used by MTT / FreD / DDiF).

kornia (``kornia.enhance.zca_mean``, defaults ``unbiased=True``) on data X (N, D), flattened
per example:

    mu    = mean(X, axis=0)                           (D,)
    Sigma = (X - mu)^T (X - mu) / (N - 1)             (D, D)   unbiased
    U, S  = svd(Sigma)            (Sigma is symmetric PSD: same as its eigendecomposition)
    W     = U diag(1 / sqrt(S + eps)) U^T  = (Sigma + eps I)^(-1/2)
    W_inv = U diag(sqrt(S + eps)) U^T      = (Sigma + eps I)^(+1/2)
    transform(x) = (x - mu) W
    inverse(y)   = y W_inv + mu    (kornia: (y + mu W) W_inv)

MTT / FreD / DDiF call ``ZCAWhitening(eps=0.1, compute_inv=True)`` fitted on the whole
training set of [0, 1] pixels (ToTensor() only, no mean/std: mtt-distillation utils.py:58-59,
137-149) and apply the same fit to the test set (utils.py:152-163); `load_dataset(...,
zca=True)` does the same. kornia flattens NCHW tensors (feature order C, H, W); here images
are NHWC and are flattened in H, W, C order. Full-covariance ZCA is equivariant to a
permutation P of the features (W' = P^T W P), so the whitened images are identical
(tests/test_parity_zca.py checks outputs, W, W_inv and the inverse against kornia at float32
tolerance, including N < D).
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

__all__ = ["ZCA", "fit_zca", "fit_zca_sharded"]

# Above this many features the (D, D) matrices get impractical (D = 16384 -> 1 GiB in f32 x 2).
_MAX_FEATURES = 16384


@dataclasses.dataclass(frozen=True, eq=False)
class ZCA:
    """A fitted ZCA whitening transform on flattened images.

    Fields:
      mean:  (D,) float32, per-feature mean of the fitting data (D = H * W * C, HWC order).
      W:     (D, D) float32, symmetric whitening matrix (Sigma + eps I)^(-1/2).
      W_inv: (D, D) float32, its inverse (Sigma + eps I)^(1/2).
      eps:   the regularizer added to the eigenvalues.

    Registered as a JAX pytree (mean, W, W_inv are leaves; eps is static), so it can be
    passed to jitted functions as an argument instead of being baked in as a constant.
    """

    mean: np.ndarray
    W: np.ndarray
    W_inv: np.ndarray
    eps: float = 0.1

    @property
    def num_features(self) -> int:
        return int(self.mean.shape[-1])

    def transform(self, x):
        """Whiten images. x: (N, H, W, C) numpy or jax array with H*W*C == D -> same shape.

        Works on numpy (returns numpy) and jax arrays (returns jax; jit-able, differentiable).
        """
        flat = x.reshape(x.shape[0], -1)
        return ((flat - self.mean) @ self.W).reshape(x.shape)

    def inverse(self, y):
        """Undo `transform`. y: (N, H, W, C) -> (N, H, W, C)."""
        flat = y.reshape(y.shape[0], -1)
        return (flat @ self.W_inv + self.mean).reshape(y.shape)


jax.tree_util.register_dataclass(
    ZCA, data_fields=["mean", "W", "W_inv"], meta_fields=["eps"]
)


def _covariance(x: np.ndarray, mean: np.ndarray, unbiased: bool, chunk: int = 2048):
    """Covariance of the rows of x (N, D) in float64, accumulated chunk by chunk.

    Each chunk product is computed in float32 (BLAS speed) and accumulated in float64.
    """
    n, d = x.shape
    cov = np.zeros((d, d), np.float64)
    mean32 = mean.astype(np.float32)
    for start in range(0, n, chunk):
        xc = np.asarray(x[start:start + chunk], np.float32) - mean32
        cov += (xc.T @ xc).astype(np.float64)
    return cov / ((n - 1) if unbiased else n)


def _use_jax(backend: str) -> bool:
    if backend == "auto":
        return jax.default_backend() != "cpu"
    if backend not in ("numpy", "jax"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'jax', got {backend!r}")
    return backend == "jax"


def _fit_numpy(x: np.ndarray, eps: float, unbiased: bool):
    """float64 host computation (accurate even for tiny eps; slow for D in the thousands)."""
    mean = x.mean(axis=0, dtype=np.float64)
    cov = _covariance(x, mean, unbiased)
    evals, evecs = np.linalg.eigh(cov)
    evals = np.clip(evals, 0.0, None)  # round-off can give tiny negatives on a PSD matrix
    w = (evecs * (1.0 / np.sqrt(evals + eps))) @ evecs.T
    w_inv = (evecs * np.sqrt(evals + eps)) @ evecs.T
    return mean, w, w_inv


def _fit_jax(x: np.ndarray, eps: float, unbiased: bool, chunk: int = 8192):
    """float32 on the default device (like kornia / MTT on the GPU); full-precision matmuls."""
    import jax.numpy as jnp

    hi = jax.lax.Precision.HIGHEST
    n, d = x.shape
    total = jnp.zeros((d,), jnp.float32)
    for start in range(0, n, chunk):
        total = total + jnp.sum(jnp.asarray(x[start:start + chunk], jnp.float32), axis=0)
    mean = total / n

    @jax.jit
    def acc(cov, block):
        b = block - mean
        return cov + jnp.matmul(b.T, b, precision=hi)

    cov = jnp.zeros((d, d), jnp.float32)
    for start in range(0, n, chunk):
        block = np.asarray(x[start:start + chunk], np.float32)
        if block.shape[0] < chunk and n > chunk:  # pad the last block: one compiled shape
            pad = np.broadcast_to(np.asarray(mean), (chunk - block.shape[0], d))
            block = np.concatenate([block, pad])  # padded rows are centred to exactly 0
        cov = acc(cov, jnp.asarray(block))
    cov = cov / ((n - 1) if unbiased else n)
    cov = 0.5 * (cov + cov.T)
    evals, evecs = jnp.linalg.eigh(cov)
    evals = jnp.clip(evals, 0.0, None)
    w = jnp.matmul(evecs * jax.lax.rsqrt(evals + eps), evecs.T, precision=hi)
    w_inv = jnp.matmul(evecs * jnp.sqrt(evals + eps), evecs.T, precision=hi)
    return np.asarray(mean), np.asarray(w), np.asarray(w_inv)


def fit_zca(images, eps: float = 0.1, *, unbiased: bool = True, backend: str = "auto") -> ZCA:
    """Fit ZCA whitening on a set of images (kornia ``ZCAWhitening`` semantics).

    Args:
      images: (N, H, W, C) (or (N, D)) array, typically the whole training set of [0, 1]
        pixels (the authors' setting).
      eps: added to the covariance eigenvalues (MTT uses 0.1).
      unbiased: divide the covariance by N - 1 (kornia's default) instead of N.
      backend: 'numpy' (float64 on the host), 'jax' (float32 on the default device, with
        full-precision matmuls: fast on GPU/TPU, like kornia's float32), or 'auto' (jax
        when the default backend is an accelerator, else numpy).

    Returns:
      ZCA with mean (D,), W (D, D), W_inv (D, D), all float32 numpy arrays.
    """
    x = np.asarray(images)
    n = x.shape[0]
    x = x.reshape(n, -1)
    d = x.shape[1]
    if n < 2:
        raise ValueError(f"ZCA needs at least 2 examples, got {n}")
    if d > _MAX_FEATURES:
        raise ValueError(
            f"ZCA on {d} features per image would need two {d}x{d} matrices "
            f"({2 * d * d * 4 / 2**30:.1f} GiB in float32); use zca=False or a lower "
            f"resolution (ZCA is meant for 32x32 data, as in MTT's CIFAR settings)."
        )
    fit = _fit_jax if _use_jax(backend) else _fit_numpy
    mean, w, w_inv = fit(x, float(eps), unbiased)
    return ZCA(
        mean=np.asarray(mean, np.float32),
        W=np.asarray(w, np.float32),
        W_inv=np.asarray(w_inv, np.float32),
        eps=float(eps),
    )


def fit_zca_sharded(images, total: int, eps: float = 0.1, *, unbiased: bool = True,
                    allsum=None) -> ZCA:
    """`fit_zca` of a training split spread over processes (`jaxdd.data.shard`): `images`
    are this process's rows, `total` the rows of the whole split. Collective: the float64
    feature sums, then the float64 centred cross products (each process's, chunk by chunk
    as in `_covariance`), are added over processes in process order (`shard.allsum`), and
    every process diagonalizes the same matrix (float64 host path), so all processes hold
    the same bytes. Equals the one-process fit up to float64 summation order."""
    if allsum is None:
        from jaxdd.data.shard import allsum
    x = np.asarray(images)
    x = x.reshape(x.shape[0], -1)
    n, d = int(total), x.shape[1]
    if n < 2:
        raise ValueError(f"ZCA needs at least 2 examples, got {n}")
    if d > _MAX_FEATURES:
        raise ValueError(f"ZCA on {d} features per image: too large (limit {_MAX_FEATURES}); "
                         "use zca=False or a lower resolution")
    mean = allsum(x.sum(axis=0, dtype=np.float64)) / n
    local = np.zeros((d, d), np.float64)
    mean32 = mean.astype(np.float32)
    for start in range(0, x.shape[0], 2048):  # as `_covariance`, without the division
        xc = np.asarray(x[start:start + 2048], np.float32) - mean32
        local += (xc.T @ xc).astype(np.float64)
    cov = allsum(local)
    cov = cov / ((n - 1) if unbiased else n)
    evals, evecs = np.linalg.eigh(cov)
    evals = np.clip(evals, 0.0, None)
    w = (evecs * (1.0 / np.sqrt(evals + eps))) @ evecs.T
    w_inv = (evecs * np.sqrt(evals + eps)) @ evecs.T
    return ZCA(mean=np.asarray(mean, np.float32), W=np.asarray(w, np.float32),
               W_inv=np.asarray(w_inv, np.float32), eps=float(eps))


def apply_zca_batched(zca: ZCA, images: np.ndarray, chunk: int = 8192,
                      backend: str = "auto") -> np.ndarray:
    """zca.transform on a large host array, chunk by chunk -> float32 numpy (same shape).

    backend as in `fit_zca` ('auto': the default jax device when it is an accelerator).
    """
    out = np.empty(images.shape, np.float32)
    if _use_jax(backend):
        import jax.numpy as jnp

        mean, w = jnp.asarray(zca.mean), jnp.asarray(zca.W)
        f = jax.jit(lambda b: jnp.matmul(b.reshape(b.shape[0], -1) - mean, w,
                                         precision=jax.lax.Precision.HIGHEST).reshape(b.shape))
        for start in range(0, images.shape[0], chunk):
            out[start:start + chunk] = np.asarray(f(jnp.asarray(images[start:start + chunk],
                                                                jnp.float32)))
        return out
    for start in range(0, images.shape[0], chunk):
        out[start:start + chunk] = zca.transform(np.asarray(images[start:start + chunk], np.float32))
    return out
