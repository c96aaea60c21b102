"""Every parameterization on every grid: images, spectrograms, video, voxels (no loop).

A parameterization is a module of pure functions (``jaxdd.param.get(name)``):
``budget_line(cfg, image_shape)`` states the storage rule before any work,
``init(key, real_by_class, cfg)`` builds the set, and ``decode(params, aux, indices=...)``
returns (n, *grid, C) for any grid rank -- under ``jax.jit`` and ``jax.vmap`` as well:

    pm = jaxdd.param.get("fred")
    params, aux = pm.init(key, real_by_class, cfg)          # real: (n_c, T, H, W, C) clips
    clips = jax.jit(lambda p, i: pm.decode(p, aux, indices=i))(params, jnp.arange(4))
    pairs = jax.vmap(lambda i: pm.decode(params, aux, indices=i))(jnp.asarray([[0, 1], [2, 3]]))

Run (from the repository root; offline, seconds):

    python examples/decode_any_grid.py --out /tmp/any_grid

The data are small smooth random arrays with class structure (two classes, one per sign of
a low-frequency pattern) in the four layouts jaxdd uses: image (N, H, W, C), audio
spectrogram (N, F, T, 1), video (N, T, H, W, C), voxels (N, D, H, W, 1). For each
parameterization and layout the script prints the budget line, the decoded shape and
whether a jitted vmap of decode over index pairs agrees with the plain decode, and writes
``summary.json`` (one entry per pair: shape, stored floats, allowed floats, budget line) to
--out.
"""
import argparse
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxdd import param

LAYOUTS = {"image": (8, 8, 3), "audio": (8, 8, 1), "video": (4, 6, 6, 3),
           "voxel": (6, 6, 6, 1)}


def smooth_classes(shape, n=6, seed=0):
    """Two classes of smooth arrays: +/- a fixed low-frequency pattern plus noise."""
    rng = np.random.default_rng(seed)
    grid = shape[:-1]
    axes = np.meshgrid(*[np.linspace(0, np.pi, g) for g in grid], indexing="ij")
    pattern = np.cos(sum(axes))[..., None] * np.ones(shape[-1])
    return [(sign * pattern + 0.3 * rng.standard_normal((n,) + shape)).astype(np.float32)
            for sign in (1.0, -1.0)]


def config(name, ipc=1):
    cfg = param.get(name).default_config()
    cfg.ipc = ipc
    if name == "fred":
        cfg.k = 16                                   # coefficients kept per channel
    if name == "ddif":
        # no warm-up here (it compiles a fit per grid); a run fits each field to a real
        # instance of its class first (cfg.warmup_steps)
        cfg.update(dict(width=4, num_layers=2, w0=10.0, warmup_steps=0, progress=False))
    return cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/decode_any_grid")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    summary = []
    for layout, shape in LAYOUTS.items():
        real = smooth_classes(shape)
        for name in ("pixel", "fred", "ddif", "nsd"):
            pm, cfg = param.get(name), config(name)
            line = param.budget_line(name, cfg, shape)
            params, aux = pm.init(jax.random.PRNGKey(0), real, cfg)
            full = np.asarray(jax.jit(lambda p, pm=pm, aux=aux: pm.decode(p, aux))(params))
            # pairs of instances, decoded by a jitted vmap over index pairs
            pairs = jnp.arange(2 * min(2, full.shape[0] // 2)).reshape(-1, 2)
            decode_pairs = jax.jit(jax.vmap(
                lambda i, pm=pm, p=params, aux=aux: pm.decode(p, aux, indices=i)))
            ok = np.allclose(decode_pairs(pairs), full[np.asarray(pairs)], atol=1e-5)
            stored = pm.budget(params, aux)
            allowed = len(real) * cfg.ipc * int(np.prod(shape))
            print(f"{layout:5s} {name:5s} decode {full.shape} jit/vmap {'ok' if ok else 'DIFF'}"
                  f" | {line}")
            if not ok or stored > allowed:
                raise SystemExit(f"{name} on {layout}: jit/vmap decode differs or the set "
                                 f"stores {stored} > {allowed} floats")
            summary.append(dict(layout=layout, param=name, image_shape=list(shape),
                                decoded_shape=list(full.shape), stored_floats=int(stored),
                                allowed_floats=int(allowed), budget_line=line))
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"wrote {os.path.join(args.out, 'summary.json')} ({len(summary)} entries)")


if __name__ == "__main__":
    main()
