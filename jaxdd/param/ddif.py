"""DDiF: Distilling Dataset into Neural Fields (Shin et al., ICLR 2025).

Every synthetic instance is one small neural field (SIREN by default) mapping grid
coordinates in [-1, 1]^n to channel values. All fields of all classes are ONE stacked
pytree (leading axis = field, class-major: class 0's fields first), decoded with
``jax.vmap(apply, in_axes=(0, None))(params, coords)``. Nothing depends on the number of
spatial axes: (H, W, C) images use a 2-D grid, (T, H, W, C) video / (D, H, W, C) voxels a
3-D grid, with the same code.

Budget (paper Sec. 3.2 and the public code): b = parameters of one field; fields per class
= floor(ipc * prod(image_shape) / b) (prod includes channels). CIFAR-10 (32x32x3):
width 6 / 2 sine layers -> b = 81, 37 fields/class at IPC 1, 379 at IPC 10; width 20 ->
b = 543, 282 at IPC 50. ImageNet-128: 3 sine layers, width 20 -> b = 963, 51 at IPC 1.

Warm-up (paper App. B / public code): each field is fitted to a random real image of its
class with MSE and Adam(lr 5e-4) for 5000 steps. The public code fits the fields one after
another; here all fields are fitted at once under vmap (the loss is the SUM of the per-field
mean squared errors, so every field receives exactly the gradient it would get alone and the
element-wise Adam makes the joint fit identical to independent fits).

Optimizer (the public code @ b628e7b, SynSet/DDiF.py:65 and :133): every field is its own
``Siren`` module in a ``torch.nn.ModuleList`` and ONE ``torch.optim.Adam`` holds all their
parameters, so Adam's state (moments AND step count) is per field. A field that was not
decoded in an iteration (TM: ``randperm(K)[:syn_steps * batch_syn]``, TM/main_TM.py:285;
DM / DC: ``batch_syn`` fields per class) gets ``grad None`` (torch >= 2.0 ``zero_grad``
sets grads to None) and Adam skips it: no move, no moment decay, no step. jaxdd matches
this: ``INSTANCE_PARAMETERS = True`` below makes ``jaxdd.distill`` keep one optimizer
state per field and update only the decoded fields (``jaxdd.outer_step.per_instance``).

Decode (SynSet/DDiF.py:139-160, 207-212): coordinates ``torch.ones(H, W).nonzero()``
(row-major, first coordinate = row) divided by (H - 1), times 2, minus 1; output reshaped
to (H, W, 3) and permuted to CHW; linear output layer, no clamp / tanh / scaling. Labels
are class-major (field k belongs to class k // fields_per_class). Checked against the
authors' modules by tests/test_parity_ddif.py.

Differences from the public code (deliberate, documented, tested):
  * coordinates: per-axis linspace(-1, 1, n_k); the code divides EVERY axis by (H - 1),
    which is the same for square images (all published settings) and keeps non-square
    axes inside [-1, 1] here (the code's W axis would reach 2 (W - 1) / (H - 1) - 1).
  * channels: the image code hard-codes 3 output channels in ``get``; here any C works
    (the field's dim_out = C), e.g. grayscale digits / MNIST.
  * a class with fewer real images than fields draws warm-up targets with replacement
    (the code would run out of images).
  * ``warmup_steps`` defaults to 300 (CPU friendly); set 5000 for the published setting.

Other grids (``budget_line`` prints the rule for any shape). Voxels (D, H, W, 1) and video
(T, H, W, C) use a 3-D grid; audio spectrograms (F, T, 1) a 2-D one; checked against the
authors' modules by tests/test_parity_modal_params.py.
  * voxels (aailab-kaist/DDiF @ b628e7b, 3D_Voxel/DDiF.py): coordinates ``ones(D, H,
    W).nonzero() / (D - 1)`` shifted to [-1, 1] (row-major, first coordinate = D; every axis
    divided by D - 1: cubic voxels, = linspace per axis here), output ``reshape(1, D, H,
    W)`` (dim_out 1), no final activation; fields per class ``int(ipc * C*D*H*W / b)``
    (:44), the rule above. Published fields (3D_Voxel/hyper_params.py): 3 sine layers,
    width 20, w0 40, w0_initial 30, dim_in 3, dim_out 1 (b = 941; 34 fields per class at
    32^3, IPC 1).
  * video (Video/DDiF.py): coordinates (t, h, w) with t / (T - 1) and h, w / (H - 1)
    (:184-189; = linspace per axis for H = W), output ``reshape(T, H, W, 3).permute(0, 3,
    1, 2)`` (their (T, C, H, W); jaxdd keeps (T, H, W, C)); published fields
    (Video/hyper_params.py): 6 sine layers, width 40, w0 = w0_initial = 5, dim_out 3, and
    ``dipc`` = 1 field per class (Video/scripts/run_DDiF.sh; their video code takes the
    count as given, no budget fill): set ``fields_per_class = 1``. Difference: their warm-up
    target ``video.reshape(c, -1).T`` (:190) reshapes a (T, C, H, W) clip, which mixes
    frames and channels relative to the layout ``get`` decodes; jaxdd fits each field to
    the clip in its decode layout (the same target for images and voxels, where their
    reshape is the layout).
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxdd.param import siren as _nf

# Every field is a separate parameter set in the authors' optimizer (see module docstring):
# jaxdd.distill keeps per-field optimizer state and moves only the decoded fields.
INSTANCE_PARAMETERS = True


# ---------------------------------------------------------------------------------------
# config and budget
# ---------------------------------------------------------------------------------------

def default_config() -> ml_collections.ConfigDict:
    """DDiF fields (CIFAR-10 IPC 1 defaults from the paper's Table 8)."""
    cfg = ml_collections.ConfigDict()
    cfg.ipc = 1
    cfg.field = "siren"          # 'siren' | 'ffn' (Fourier features + ReLU MLP ablation)
    cfg.width = 6                # hidden width d (CIFAR-10: 6 / 6 / 20 for IPC 1 / 10 / 50)
    cfg.num_layers = 2           # sine (or ReLU) layers before the linear output layer
    cfg.w0 = 10.0                # hidden-layer frequency (CIFAR 10, ImageNet-128 40)
    cfg.w0_initial = 30.0        # first-layer frequency
    cfg.dim_in = 0               # 0: infer = image rank - 1 (2 for HWC, 3 for DHWC / THWC)
    cfg.dim_out = 0              # 0: infer = image channels; >0: checked against the images
    cfg.fields_per_class = 0     # 0: from the budget; >0: fixed (code's `dipc`), checked
    # FFN options (used when field == 'ffn')
    cfg.ffn_mapping = "gaussian"  # 'gaussian' | 'positional' | 'basic'
    cfg.ffn_num_features = 16     # rows of B (per axis for 'positional')
    cfg.ffn_scale = 10.0          # Gaussian std / positional max frequency
    cfg.ffn_seed = 0              # B is rebuilt from this seed (not learned, not stored)
    # warm-up: fit each field to a random real image of its class (paper: 5000 steps)
    cfg.warmup_steps = 300        # small CPU default; the paper uses 5000
    cfg.warmup_lr = 5e-4
    cfg.warmup_chunk = 100        # steps per jitted chunk (progress bar granularity)
    cfg.warmup_batch = 0          # 0: all fields in one vmapped fit; B: groups of B (memory)
    cfg.progress = True
    return cfg


def _field_spec(cfg, image_shape) -> dict:
    """Static description of one field (python scalars / numpy only)."""
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) < 2:
        raise ValueError(f"image_shape must be (*spatial, C), got {image_shape}")
    dim_in = len(image_shape) - 1
    cfg_dim_in = int(cfg.get("dim_in", 0) or 0)
    if cfg_dim_in and cfg_dim_in != dim_in:
        raise ValueError(f"cfg.dim_in={cfg_dim_in} but images of shape {image_shape} have "
                         f"{dim_in} spatial axes; set dim_in=0 to infer it")
    dim_out = image_shape[-1]
    cfg_dim_out = int(cfg.get("dim_out", 0) or 0)
    if cfg_dim_out and cfg_dim_out != dim_out:
        raise ValueError(f"cfg.dim_out={cfg_dim_out} but images of shape {image_shape} have "
                         f"{dim_out} channels; set dim_out=0 to infer it")
    field = str(cfg.get("field", "siren"))
    spec = {
        "field": field,
        "width": int(cfg.width),
        "num_layers": int(cfg.num_layers),
        "w0": float(cfg.w0),
        "w0_initial": float(cfg.w0_initial),
        "dim_in": dim_in,
        "dim_out": dim_out,
        "grid_shape": image_shape[:-1],
        "image_shape": image_shape,
    }
    if field == "siren":
        spec["params_per_field"] = _nf.num_params(dim_in, spec["width"], spec["num_layers"],
                                                  dim_out)
    elif field == "ffn":
        B = _nf.fourier_matrix(int(cfg.ffn_seed), str(cfg.ffn_mapping), dim_in,
                               int(cfg.ffn_num_features), float(cfg.ffn_scale))
        spec.update(ffn_mapping=str(cfg.ffn_mapping), ffn_num_features=int(cfg.ffn_num_features),
                    ffn_scale=float(cfg.ffn_scale), ffn_seed=int(cfg.ffn_seed), ffn_B=B)
        spec["params_per_field"] = _nf.ffn_num_params(B.shape[0], spec["width"],
                                                      spec["num_layers"], dim_out)
    else:
        raise ValueError(f"unknown DDiF field {field!r}; use 'siren' or 'ffn'")
    return spec


def params_per_field(cfg, image_shape) -> int:
    """b: learnable floats in one field for images of shape (*spatial, C)."""
    return _field_spec(cfg, image_shape)["params_per_field"]


def fields_per_class(ipc, image_shape, params_per_field: int, fixed: int = 0) -> int:
    """floor(ipc * prod(image_shape) / b), or ``fixed`` if > 0 (checked against the budget).

    Raises ValueError when no field fits (or the fixed count exceeds the budget).
    """
    size = int(np.prod(image_shape))
    allowed = ipc * size
    n = int(fixed) if fixed and fixed > 0 else int(math.floor(allowed / params_per_field))
    if n < 1 or n * params_per_field > allowed:
        raise ValueError(
            f"DDiF: invalid budget: ipc={ipc} x image size {tuple(image_shape)} "
            f"(= {size} floats) allows {allowed} floats per class, but one neural field has "
            f"{params_per_field} parameters, so {n} field(s) per class "
            f"({'requested' if fixed else 'fitting'}). Reduce the field width or "
            f"num_layers, or raise ipc.")
    return n


def budget_line(cfg, image_shape) -> str:
    """One human line: the DDiF budget rule for ``cfg`` on data of shape (*grid, C)."""
    shape = tuple(int(s) for s in image_shape)
    b = params_per_field(cfg, shape)
    fixed = int(cfg.get("fields_per_class", 0) or 0)
    n = fields_per_class(int(cfg.ipc), shape, b, fixed)
    allowed = int(cfg.ipc) * int(np.prod(shape))
    how = f"fixed {fixed}" if fixed else f"floor({allowed} / {b}) = {n}"
    return (f"DDiF budget: {int(cfg.ipc)} ipc x {'x'.join(map(str, shape))} = {allowed} "
            f"floats per class; one field ({len(shape) - 1}-D coordinates, "
            f"{int(cfg.num_layers)} layers, width {int(cfg.width)}) = {b} parameters -> "
            f"{how} fields per class, {n * b} floats stored per class")


# ---------------------------------------------------------------------------------------
# apply / decode
# ---------------------------------------------------------------------------------------

def _apply_fn(aux):
    """fn(params_one_field, coords (P, dim_in)) -> (P, dim_out), closing over aux scalars."""
    if aux["field"] == "siren":
        w0, w0i = float(aux["w0"]), float(aux["w0_initial"])
        return lambda p, c: _nf.siren_apply(p, c, w0, w0i)
    if aux["field"] == "ffn":
        B = np.asarray(aux["ffn_B"], np.float32)
        return lambda p, c: _nf.ffn_apply(p, c, B)
    raise ValueError(f"unknown DDiF field {aux['field']!r}")


def _stacked_apply_fn(aux):
    """fn(stacked params (K, ...), coords (P, dim_in)) -> (K, P, dim_out): every field at
    once (SIREN: one batched contraction per layer, ``siren_apply_stacked``; FFN: vmap)."""
    if aux["field"] == "siren":
        w0, w0i = float(aux["w0"]), float(aux["w0_initial"])
        return lambda p, c: _nf.siren_apply_stacked(p, c, w0, w0i)
    return jax.vmap(_apply_fn(aux), in_axes=(0, None))


def _num_fields(params) -> int:
    return int(jax.tree.leaves(params)[0].shape[0])


def _out_grid(aux, resolution):
    grid = tuple(int(s) for s in aux["grid_shape"])
    if resolution is None:
        return grid
    if isinstance(resolution, (int, np.integer)):
        return (int(resolution),) * len(grid)
    return tuple(int(r) for r in resolution)


def decode(params, aux, *, indices=None, resolution=None):
    """Evaluate fields on their coordinate grid.

    Args:
      params: stacked field pytree (leading axis K = number of fields).
      aux: from ``init``.
      indices: None (all fields, label order) or an int array (n,) (may be traced): the
        fields to decode, gathered along the leading axis.
      resolution: None (training grid), an int R (R points per spatial axis) or a tuple of
        per-axis sizes: the same fields evaluated on a finer/coarser grid in [-1, 1].
    Returns:
      float32 (n, *grid, C): (n, H, W, C) for images, (n, D, H, W, C) for 3-axis grids.
    """
    if indices is not None:
        params = jax.tree.map(lambda p: jnp.take(p, indices, axis=0), params)
    grid = _out_grid(aux, resolution)
    coords = jnp.asarray(_nf.make_grid(grid))
    out = _stacked_apply_fn(aux)(params, coords)   # (n, P, C)
    return out.reshape((out.shape[0],) + grid + (out.shape[-1],))


def budget(params, aux) -> int:
    """Stored floats: number of fields x parameters per field."""
    return _num_fields(params) * int(aux["params_per_field"])


def sample_indices(key, aux, n: int):
    """n distinct field indices drawn uniformly (the authors' syn_steps * batch_syn subset).

    ``n`` is a python int; values >= the number of fields return a permutation of all.
    Returns int32 (min(n, K),).
    """
    total = int(len(aux["labels"]))
    n = min(int(n), total)
    return jax.random.permutation(key, total)[:n].astype(jnp.int32)


# ---------------------------------------------------------------------------------------
# warm-up
# ---------------------------------------------------------------------------------------

def _field_key(aux):
    """The static description of a field's function (hashable), for compiled-function caches."""
    if aux["field"] == "siren":
        return ("siren", float(aux["w0"]), float(aux["w0_initial"]))
    B = np.asarray(aux["ffn_B"], np.float32)
    return ("ffn", B.shape, B.tobytes())


def _aux_of_key(key):
    if key[0] == "siren":
        return {"field": "siren", "w0": key[1], "w0_initial": key[2]}
    return {"field": "ffn", "ffn_B": np.frombuffer(key[2], np.float32).reshape(key[1])}


@functools.lru_cache(maxsize=16)
def _warmup_chunk_fn(field_key, lr: float, chunk: int):
    """One compiled warm-up chunk per (field function, lr, chunk): `n` <= chunk Adam steps
    on all fields at once. Cached, so a second warm-up (another run in the same process, a
    benchmark repeat, every group of ``batch``) does not compile again."""
    fn = _stacked_apply_fn(_aux_of_key(field_key))
    tx = optax.adam(lr)

    def total(p, coords, t, mask):
        per = jnp.mean((fn(p, coords) - t) ** 2, axis=(1, 2))
        # sum (not mean) over fields: each field gets exactly its own gradient
        return jnp.sum(per * mask), per

    @jax.jit
    def run_chunk(p, opt_state, coords, t, mask, n):
        def body(i, carry):
            p, s, buf = carry
            (_, per), g = jax.value_and_grad(total, has_aux=True)(p, coords, t, mask)
            upd, s = tx.update(g, s, p)
            return optax.apply_updates(p, upd), s, buf.at[i].set(jnp.sum(per * mask))
        return jax.lax.fori_loop(0, n, body, (p, opt_state, jnp.zeros((chunk,), jnp.float32)))
    return run_chunk


def warmup(key, params, aux, targets, steps: int, lr: float = 5e-4, progress: bool = True,
           chunk: int = 100, batch: int = 0):
    """Fit every field to its target image: MSE, Adam(lr), all fields at once under vmap.

    Args:
      key: unused (the fit is deterministic); kept for a uniform signature.
      params: stacked fields (K leading).
      aux: from ``init`` (field type and grid).
      targets: (K, *grid, C) images; field k is fitted to targets[k].
      steps: Adam steps per field.
      lr: Adam learning rate (paper 5e-4).
      progress: show a tqdm bar (updated between chunks).
      chunk: steps per jitted call; one compiled function serves every chunk.
      batch: 0 = all K fields in one vmapped fit; B > 0 = groups of B fields fitted one
        group after another (bounds memory for large sets; identical result, since the
        fields are independent and Adam is element-wise). The last group is padded.
    Returns:
      (params, losses): fitted stacked fields, and float32 numpy (steps,) = mean over the
      K fields of the per-field MSE before each update.
    """
    del key
    steps = int(steps)
    if steps <= 0:
        return params, np.zeros((0,), np.float32)
    coords = jnp.asarray(_nf.make_grid(tuple(aux["grid_shape"])))
    K = _num_fields(params)
    targets = jnp.asarray(targets, jnp.float32).reshape(K, coords.shape[0], -1)
    tx = optax.adam(lr)
    chunk = max(1, min(int(chunk), steps))
    G = K if int(batch) <= 0 else min(int(batch), K)
    num_groups = -(-K // G)
    run_chunk = _warmup_chunk_fn(_field_key(aux), float(lr), chunk)

    loss_sum = np.zeros((steps,), np.float64)
    fitted = []
    with tqdm(total=steps * num_groups, desc=f"DDiF warm-up ({K} fields)",
              disable=not progress, leave=False) as bar:
        for g in range(num_groups):
            lo, hi = g * G, min((g + 1) * G, K)
            if num_groups == 1:
                p_g, t_g, mask = params, targets, jnp.ones((K,), jnp.float32)
            else:
                idx = np.minimum(np.arange(lo, lo + G), K - 1)   # pad with the last field
                p_g = jax.tree.map(lambda a: a[idx], params)
                t_g = targets[idx]
                mask = jnp.asarray((np.arange(lo, lo + G) < K).astype(np.float32))
            opt_state = tx.init(p_g)
            done = 0
            while done < steps:
                n = min(chunk, steps - done)
                p_g, opt_state, buf = run_chunk(p_g, opt_state, coords, t_g, mask, jnp.int32(n))
                buf = np.asarray(buf)[:n]
                loss_sum[done:done + n] += buf
                done += n
                bar.update(n)
                bar.set_postfix(mse=f"{buf[-1] / float(hi - lo):.4g}")
            fitted.append(jax.tree.map(lambda a: a[:hi - lo], p_g))
    if num_groups > 1:
        params = jax.tree.map(lambda *xs: jnp.concatenate(xs), *fitted)
    else:
        params = fitted[0]
    return params, (loss_sum / K).astype(np.float32)


# ---------------------------------------------------------------------------------------
# init
# ---------------------------------------------------------------------------------------

def init_fields(key, aux, num_fields: int):
    """Random stacked fields (vmap over keys) for the field described by aux."""
    keys = jax.random.split(key, num_fields)
    if aux["field"] == "siren":
        f = lambda k: _nf.init_siren(k, aux["dim_in"], aux["width"], aux["num_layers"],
                                     aux["dim_out"], aux["w0"], aux["w0_initial"])
    else:
        nf = int(np.asarray(aux["ffn_B"]).shape[0])
        f = lambda k: _nf.init_ffn(k, nf, aux["width"], aux["num_layers"], aux["dim_out"])
    return jax.jit(jax.vmap(f))(keys)   # one compile instead of op-by-op dispatch


def init(key, real_images_by_class, cfg):
    """Build the DDiF synthetic set.

    Args:
      key: PRNG key.
      real_images_by_class: list (num_classes) of float32 (n_c, *spatial, C) real images.
      cfg: ``default_config()``-style ConfigDict.
    Returns:
      params: stacked field pytree {'layers': [{'w': (K, fi, fo), 'b': (K, fo)}, ...]},
        K = num_classes * fields_per_class, class-major.
      aux: labels (K,) int32, image_shape, grid_shape, field hyperparameters,
        params_per_field, fields_per_class, num_classes (+ ffn_B for FFN fields,
        warmup_final_mse when warmed up).
    """
    num_classes = len(real_images_by_class)
    if num_classes == 0:
        raise ValueError("DDiF init needs at least one class of real images")
    image_shape = tuple(int(s) for s in np.shape(real_images_by_class[0])[1:])
    spec = _field_spec(cfg, image_shape)
    ipc = cfg.ipc
    fpc = fields_per_class(ipc, image_shape, spec["params_per_field"],
                           int(cfg.get("fields_per_class", 0) or 0))
    aux = dict(spec)
    aux["num_classes"] = num_classes
    aux["fields_per_class"] = fpc
    aux["labels"] = np.repeat(np.arange(num_classes, dtype=np.int32), fpc)

    k_sel, k_init, k_warm = jax.random.split(key, 3)
    params = init_fields(k_init, aux, num_classes * fpc)

    steps = int(cfg.get("warmup_steps", 0) or 0)
    if steps > 0:
        targets = []
        for c, (k, real) in enumerate(zip(jax.random.split(k_sel, num_classes),
                                          real_images_by_class)):
            n = int(np.shape(real)[0])
            if n == 0:
                raise ValueError(f"DDiF warm-up: class {c} has no real images")
            if tuple(np.shape(real)[1:]) != image_shape:
                raise ValueError(f"class {c} images have shape {np.shape(real)[1:]}, "
                                 f"expected {image_shape}")
            idx = np.asarray(jax.random.choice(k, n, (fpc,), replace=n < fpc))
            targets.append(np.asarray(real[idx], np.float32))
        targets = np.concatenate(targets)
        params, losses = warmup(k_warm, params, aux, targets, steps,
                                float(cfg.get("warmup_lr", 5e-4)),
                                progress=bool(cfg.get("progress", True)),
                                chunk=int(cfg.get("warmup_chunk", 100)),
                                batch=int(cfg.get("warmup_batch", 0) or 0))
        aux["warmup_final_mse"] = float(losses[-1])
    return params, aux


def template(key, real_images_by_class, cfg):
    """The params `init` gives, without the warm-up (structure and shapes only matter: a
    checkpoint is restored into them)."""
    c = ml_collections.ConfigDict(cfg.to_dict()) if hasattr(cfg, "to_dict") else cfg
    c.warmup_steps = 0
    return init(key, real_images_by_class, c)[0]
