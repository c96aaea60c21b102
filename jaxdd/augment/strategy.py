"""DSA strategies and modes: the op groups and their uniform columns, the draws of a call
(``dsa_draw``), their application (``dsa_apply``), ``dsa`` itself and ``Augment`` /
``make_augment``. Part of :mod:`jaxdd.augment`.
"""

from __future__ import annotations

import dataclasses
import functools
import jax
import jax.numpy as jnp
from jax import lax

from jaxdd.augment.affine import apply_rotate, apply_scale
from jaxdd.augment.ops import (apply_brightness, apply_contrast, apply_crop, apply_cutout,
                               apply_flip, apply_saturation)
from jaxdd.augment.params import (DSAParams, _DEFAULT, _uniform_to_int, per_sample_uniform)


# ----------------------------------------------------------------------------------------
# Strategy / mode
# ----------------------------------------------------------------------------------------

# Each group reads a fixed slice of one per-sample uniform block (N, NUM_UNIFORMS), so a
# whole dsa call costs a single per-sample PRNG draw (cheap to compile) and a group's
# parameters do not depend on which other groups are in the strategy.
GROUP_COLUMNS: dict[str, tuple[int, int]] = {
    "color": (0, 3),    # brightness, saturation, contrast
    "crop": (3, 5),     # t_h, t_w
    "cutout": (5, 7),   # o_h, o_w
    "flip": (7, 8),
    "scale": (8, 10),   # sx, sy
    "rotate": (10, 11),
}
NUM_UNIFORMS = 11
GROUPS = tuple(GROUP_COLUMNS)
GROUP_ID: dict[str, int] = {name: i for i, name in enumerate(GROUPS)}

# Data modalities (jaxdd.data.Dataset.modality) and the rank of their batches.
MODALITIES: dict[str, int] = {"image": 4, "audio": 4, "video": 5, "voxel": 5}

# Where the authors leave voxels unaugmented (quoted in the error below).
_VOXEL_NONE = ("the authors run no DSA on voxels: aailab-kaist/DDiF @ b628e7b, "
               "3D_Voxel/main_DM.py:34 and main_DC.py:35 default --dsa_strategy '' (\"No DSA "
               "strategy for 3D Voxel\"), which DiffAugment returns unchanged "
               "(3D_Voxel/utils.py:490-491); sdh0818/FreD @ 9f35a7a, 3D-MNIST/main_DM_FreD.py:129 "
               "has the option commented out")


def check_modality(ndim: int, strategy, modality=None) -> str:
    """The modality a DSA call on a batch of rank `ndim` runs as; raises a ValueError that
    names the problem otherwise.

    modality None: 'image' for 4-D batches; a 5-D batch must name its modality ('video':
    (N, T, H, W, C) clips, 'voxel': (N, D, H, W, 1) volumes), since the two are augmented
    differently. 'image' / 'audio' (a spectrogram is a 1-channel 2-D grid) need 4-D,
    'video' / 'voxel' 5-D. On 'voxel' only strategy 'none' is defined (the authors'
    default; no 3-D DSA is implemented): any op group raises.
    """
    names = parse_strategy(strategy)
    if modality is None:
        if ndim == 4:
            modality = "image"
        elif ndim == 5:
            if not names:
                return "video"  # nothing is applied; the name does not matter
            raise ValueError(f"DSA strategy {strategy!r} on a 5-D batch: pass modality="
                             "'video' ((N, T, H, W, C) clips, frame-wise) or 'voxel' "
                             "((N, D, H, W, 1) volumes)")
        else:
            raise ValueError(f"DSA expects NHWC images (4-D) or NTHWC / NDHWC batches "
                             f"(5-D), got a {ndim}-D batch")
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r} for DSA; known: {list(MODALITIES)}")
    if ndim != MODALITIES[modality]:
        raise ValueError(f"DSA on modality {modality!r} expects {MODALITIES[modality]}-D "
                         f"batches, got a {ndim}-D batch")
    if modality == "voxel" and names:
        raise ValueError(f"DSA strategy {strategy!r} is not defined for modality 'voxel' "
                         f"(no 3-D flip / crop / scale is implemented); {_VOXEL_NONE}. "
                         "Set dsa_strategy='none'.")
    return modality


def _check_strategy_modality(strategy, modality):
    """check_modality without a batch (dsa_draw / make_augment): only the voxel rule."""
    if modality is not None:
        check_modality(MODALITIES.get(modality, 0) if modality in MODALITIES else 0,
                       strategy, modality)


@functools.partial(jax.jit, static_argnames=('name', 'params'))
def apply_group(x, name: str, u, params: DSAParams = _DEFAULT):
    """Apply op group `name` given its per-sample uniforms u (N, k) (k = its column count).

    'color' = brightness(u[:,0]) -> saturation(u[:,1]) -> contrast(u[:,2]).
    x (N, H, W, C) images, or (N, T, H, W, C) video clips: then clip n's uniforms u[n] are
    applied to each of its T frames as to an image (the frames are folded into the batch,
    one vectorized call; contrast's mean is per frame).
    """
    if x.ndim == 5:
        n, t = x.shape[:2]
        out = apply_group(x.reshape((n * t,) + x.shape[2:]), name, jnp.repeat(u, t, axis=0),
                          params)
        return out.reshape(x.shape)
    if name == "color":
        x = apply_brightness(x, u[:, 0], params)
        x = apply_saturation(x, u[:, 1], params)
        return apply_contrast(x, u[:, 2], params)
    if name == "crop":
        return apply_crop(x, u, params)
    if name == "cutout":
        return apply_cutout(x, u, params)
    if name == "flip":
        return apply_flip(x, u[:, 0], params)
    if name == "scale":
        return apply_scale(x, u, params)
    if name == "rotate":
        return apply_rotate(x, u[:, 0], params)
    raise ValueError(f"unknown DSA op group {name!r}")


def parse_strategy(strategy) -> tuple[str, ...]:
    """'color_crop_...' -> ('color', 'crop', ...); 'none'/''/None -> ()."""
    if strategy is None or strategy.lower() in ("", "none"):
        return ()
    names = tuple(strategy.split("_"))
    for nm in names:
        if nm not in GROUP_COLUMNS:
            raise ValueError(f"unknown DSA op group {nm!r} in strategy {strategy!r}; "
                             f"known: {list(GROUPS)}")
    return names


def split_key(key):
    """key -> (k_op, k_par): op-choice key (mode 'S') and parameter key."""
    k_op, k_par = jax.random.split(key)
    return k_op, k_par


@functools.partial(jax.jit, static_argnames=('n', 'occurrence', 'batchmode'))
def draw_uniforms(key, n: int, occurrence: int = 0, batchmode: bool = False):
    """The per-sample uniform block (n, NUM_UNIFORMS) that dsa(key, ...) uses.

    Block = per_sample_uniform(fold_in(k_par, occurrence), n, (NUM_UNIFORMS,)) with
    k_par = split_key(key)[1]; `occurrence` counts earlier repeats of the same group name in
    a strategy (mode 'M', e.g. 'flip_flip'), 0 otherwise.
    """
    _, k_par = split_key(key)
    return per_sample_uniform(jax.random.fold_in(k_par, occurrence), n, (NUM_UNIFORMS,),
                              batchmode)


def _occurrences(names):
    seen: dict[str, int] = {}
    occ = []
    for nm in names:
        occ.append(seen.get(nm, 0))
        seen[nm] = seen.get(nm, 0) + 1
    return occ


@functools.partial(jax.jit, static_argnames=('strategy',))
def sample_op(key, strategy: str = "color_crop_cutout_flip_scale_rotate"):
    """Index (int32 scalar) into parse_strategy(strategy) of the group mode 'S' applies."""
    names = parse_strategy(strategy)
    if not names:
        raise ValueError("strategy has no op groups")
    k_op, _ = split_key(key)
    return _uniform_to_int(jax.random.uniform(k_op, ()), 0, len(names))


@functools.partial(jax.jit, static_argnames=("n", "strategy", "mode", "params", "modality"))
def dsa_draw(key, n: int, strategy: str = "color_crop_cutout_flip_scale_rotate",
             mode: str = "S", params: DSAParams = _DEFAULT, op_key=None, modality=None):
    """Every random draw of ``dsa(key, x, strategy, mode, params, op_key)`` for a batch of
    ``n`` images, as a pytree: ``{'op': int32 scalar, 'u': (n, NUM_UNIFORMS)}`` in mode 'S'
    (``op`` indexes the distinct groups of the strategy), ``{'u': (occurrences, n,
    NUM_UNIFORMS)}`` in mode 'M'. ``dsa_apply(dsa_draw(key, n, ...), x, ...)`` is
    ``dsa(key, x, ...)`` exactly.

    Why split: a loop that augments at every step (TM's unrolled student) can draw all its
    steps' parameters at once, vmapped over the step keys, outside the loop body; the body
    (and its rematerialized and transposed copies) then holds no PRNG code. Measured in
    issue 17 (MNIST-shaped MTT step, 20 student steps): see jaxdd.objective.tm.

    For video, ``n`` counts clips: one draw per clip, shared by its frames (``dsa_apply``).
    ``modality`` (optional) only checks the strategy ('voxel' allows 'none' only)."""
    _check_strategy_modality(strategy, modality)
    if mode not in ("S", "M"):
        raise ValueError(f"unknown DSA mode {mode!r} (expected 'S' or 'M')")
    names = parse_strategy(strategy)
    if mode == "M":
        occ = _occurrences(names) or [0]
        return {"u": jnp.stack([draw_uniforms(key, n, o, params.batchmode)
                                for o in range(max(occ) + 1)])}
    u = draw_uniforms(key, n, 0, params.batchmode)
    uniq = tuple(dict.fromkeys(names))  # distinct groups; duplicates weight the choice
    if len(uniq) <= 1:
        return {"op": jnp.zeros((), jnp.int32), "u": u}
    branch_of = jnp.asarray([uniq.index(nm) for nm in names], jnp.int32)
    return {"op": branch_of[sample_op(key if op_key is None else op_key, strategy)], "u": u}


def dsa_apply(draw, x, strategy: str = "color_crop_cutout_flip_scale_rotate",
              mode: str = "S", params: DSAParams = _DEFAULT, modality=None):
    """Apply the augmentation that ``draw`` (from :func:`dsa_draw`, same strategy / mode /
    params, a batch of x.shape[0]) describes; differentiable w.r.t. x. ``x``: 4-D images,
    or 5-D with ``modality`` 'video' (each clip's draw applied to all its frames) or
    'voxel' (strategy 'none' only), see :func:`check_modality`."""
    check_modality(x.ndim, strategy, modality)
    if mode not in ("S", "M"):
        raise ValueError(f"unknown DSA mode {mode!r} (expected 'S' or 'M')")
    names = parse_strategy(strategy)
    if not names:
        return x

    def cols(u, name):
        a, b = GROUP_COLUMNS[name]
        return u[:, a:b]  # float32; ops cast to x.dtype where they touch x

    if mode == "M":
        for nm, o in zip(names, _occurrences(names)):
            x = apply_group(x, nm, cols(draw["u"][o], nm), params)
        return x
    u = draw["u"]
    uniq = tuple(dict.fromkeys(names))
    if len(uniq) == 1:
        return apply_group(x, uniq[0], cols(u, uniq[0]), params)
    branches = [functools.partial(lambda nm, x_, u_: apply_group(x_, nm, cols(u_, nm), params),
                                  nm) for nm in uniq]
    return lax.switch(draw["op"], branches, x, u)


@functools.partial(jax.jit, static_argnames=("strategy", "mode", "params", "modality"))
def dsa(key, x, strategy: str = "color_crop_cutout_flip_scale_rotate", mode: str = "S",
        params: DSAParams = _DEFAULT, op_key=None, modality=None):
    """Differentiable siamese augmentation.

    Args:
      key: PRNG key (raw uint32 or typed). Same key -> same op and per-sample params.
      x: float (N, H, W, C); or (N, T, H, W, C) video clips with modality='video' (one
        draw per clip, the same transform on each of its frames: ``dsa(key, v)[:, t] ==
        dsa(key, v[:, t])`` for every frame t); (N, D, H, W, 1) voxels with
        modality='voxel' allow strategy 'none' only (the authors' setting).
      strategy: static; op groups joined by '_' (see the jaxdd.augment package doc) or 'none'.
      mode: static; 'S' = one group drawn per call (lax.switch), 'M' = all groups in order.
      params: static DSAParams.
      op_key: optional key for the mode-'S' op choice (default: `key`). Under `vmap` over
        networks/experts, pass an op_key that is NOT batched: the chosen group is then one
        scalar and `lax.switch` runs one branch, instead of all six branches selected
        per element (what a batched switch index lowers to).
      modality: static; None (4-D images), 'image', 'audio', 'video' or 'voxel'
        (:func:`check_modality`).
    Returns:
      augmented batch of x's shape, differentiable w.r.t. x.
      ``dsa_apply(dsa_draw(key, N, ...), x, ...)`` is the same function in two parts.
    """
    modality = check_modality(x.ndim, strategy, modality)
    if mode not in ("S", "M"):
        raise ValueError(f"unknown DSA mode {mode!r} (expected 'S' or 'M')")
    if not parse_strategy(strategy):
        return x
    return dsa_apply(dsa_draw(key, x.shape[0], strategy, mode, params, op_key), x, strategy,
                     mode, params, modality)


@dataclasses.dataclass(frozen=True)
class Augment:
    """DSA with fixed settings as a value: ``aug(key, x)`` is :func:`dsa`; ``aug.draw(key,
    n)`` / ``aug.apply(draw, x)`` are its two halves (:func:`dsa_draw`, :func:`dsa_apply`),
    which loops use to draw every step's parameters before the loop."""
    strategy: str = "color_crop_cutout_flip_scale_rotate"
    mode: str = "S"
    params: DSAParams = _DEFAULT
    modality: str | None = None

    def __call__(self, key, x):
        return dsa(key, x, self.strategy, self.mode, self.params, modality=self.modality)

    def draw(self, key, n: int):
        return dsa_draw(key, n, self.strategy, self.mode, self.params,
                        modality=self.modality)

    def apply(self, draw, x):
        return dsa_apply(draw, x, self.strategy, self.mode, self.params, self.modality)


def make_augment(strategy, mode: str = "S", params: DSAParams = _DEFAULT, modality=None):
    """An :class:`Augment` for ``strategy``, or None for no augmentation ('none', '', None).

    modality: the data's (``Dataset.modality``; None = decided by the batch rank, see
    :func:`check_modality`); 'voxel' with an op group raises here, before any tracing."""
    _check_strategy_modality(strategy, modality)
    if strategy is None or not parse_strategy(strategy):
        return None
    return Augment(strategy, mode, params, modality)
