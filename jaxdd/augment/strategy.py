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
from jaxdd.augment.params import (DSAParams, _DEFAULT, _check4d, _uniform_to_int,
                                  per_sample_uniform)


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


@functools.partial(jax.jit, static_argnames=('name', 'params'))
def apply_group(x, name: str, u, params: DSAParams = _DEFAULT):
    """Apply op group `name` given its per-sample uniforms u (N, k) (k = its column count).

    'color' = brightness(u[:,0]) -> saturation(u[:,1]) -> contrast(u[:,2]).
    """
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


@functools.partial(jax.jit, static_argnames=("n", "strategy", "mode", "params"))
def dsa_draw(key, n: int, strategy: str = "color_crop_cutout_flip_scale_rotate",
             mode: str = "S", params: DSAParams = _DEFAULT, op_key=None):
    """Every random draw of ``dsa(key, x, strategy, mode, params, op_key)`` for a batch of
    ``n`` images, as a pytree: ``{'op': int32 scalar, 'u': (n, NUM_UNIFORMS)}`` in mode 'S'
    (``op`` indexes the distinct groups of the strategy), ``{'u': (occurrences, n,
    NUM_UNIFORMS)}`` in mode 'M'. ``dsa_apply(dsa_draw(key, n, ...), x, ...)`` is
    ``dsa(key, x, ...)`` exactly.

    Why split: a loop that augments at every step (TM's unrolled student) can draw all its
    steps' parameters at once, vmapped over the step keys, outside the loop body; the body
    (and its rematerialized and transposed copies) then holds no PRNG code. Measured in
    issue 17 (MNIST-shaped MTT step, 20 student steps): see jaxdd.objective.tm."""
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
              mode: str = "S", params: DSAParams = _DEFAULT):
    """Apply the augmentation that ``draw`` (from :func:`dsa_draw`, same strategy / mode /
    params, a batch of x.shape[0]) describes; differentiable w.r.t. x."""
    _check4d(x)
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


@functools.partial(jax.jit, static_argnames=("strategy", "mode", "params"))
def dsa(key, x, strategy: str = "color_crop_cutout_flip_scale_rotate", mode: str = "S",
        params: DSAParams = _DEFAULT, op_key=None):
    """Differentiable siamese augmentation.

    Args:
      key: PRNG key (raw uint32 or typed). Same key -> same op and per-sample params.
      x: float (N, H, W, C).
      strategy: static; op groups joined by '_' (see the jaxdd.augment package doc) or 'none'.
      mode: static; 'S' = one group drawn per call (lax.switch), 'M' = all groups in order.
      params: static DSAParams.
      op_key: optional key for the mode-'S' op choice (default: `key`). Under `vmap` over
        networks/experts, pass an op_key that is NOT batched: the chosen group is then one
        scalar and `lax.switch` runs one branch, instead of all six branches selected
        per element (what a batched switch index lowers to).
    Returns:
      (N, H, W, C) augmented images, differentiable w.r.t. x.
      ``dsa_apply(dsa_draw(key, N, ...), x, ...)`` is the same function in two parts.
    """
    _check4d(x)
    if mode not in ("S", "M"):
        raise ValueError(f"unknown DSA mode {mode!r} (expected 'S' or 'M')")
    if not parse_strategy(strategy):
        return x
    return dsa_apply(dsa_draw(key, x.shape[0], strategy, mode, params, op_key), x, strategy,
                     mode, params)


@dataclasses.dataclass(frozen=True)
class Augment:
    """DSA with fixed settings as a value: ``aug(key, x)`` is :func:`dsa`; ``aug.draw(key,
    n)`` / ``aug.apply(draw, x)`` are its two halves (:func:`dsa_draw`, :func:`dsa_apply`),
    which loops use to draw every step's parameters before the loop."""
    strategy: str = "color_crop_cutout_flip_scale_rotate"
    mode: str = "S"
    params: DSAParams = _DEFAULT

    def __call__(self, key, x):
        return dsa(key, x, self.strategy, self.mode, self.params)

    def draw(self, key, n: int):
        return dsa_draw(key, n, self.strategy, self.mode, self.params)

    def apply(self, draw, x):
        return dsa_apply(draw, x, self.strategy, self.mode, self.params)


def make_augment(strategy, mode: str = "S", params: DSAParams = _DEFAULT):
    """An :class:`Augment` for ``strategy``, or None for no augmentation ('none', '', None)."""
    if strategy is None or not parse_strategy(strategy):
        return None
    return Augment(strategy, mode, params)
