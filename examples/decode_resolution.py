"""Load a saved synthetic set and decode it at another resolution (no jaxdd loop).

A set saved by a run (``<workdir>/synthetic.msgpack``, written by ``jaxdd.io.save_synthetic``)
holds its parameterization's name, its parameters and its static ``aux``. The
parameterization's pure ``decode(params, aux, resolution=R)`` evaluates it on another grid:
DDiF's neural fields at any resolution, FreD's DCT coefficients by zero-padding /
truncating the spectrum. Sets with no continuous form (NSD) are decoded at their training
size and resized bilinearly (``jaxdd.io.decode_synthetic`` does this for any set).

Run (from the repository root):

    python examples/decode_resolution.py --out /tmp/decoded           # makes a tiny DDiF set
    python examples/decode_resolution.py runs/x/synthetic.msgpack --resolution 64 --out /tmp/d

With no path the script first makes a tiny DDiF set itself (one small SIREN per image,
fitted to real digits for a few hundred Adam steps, ``jaxdd.param.ddif.init``) and saves it,
so it runs offline in seconds. It writes ``grid_native.png`` (the training grid),
``grid_<R>.png`` (the set at R x R; one row per class, each image stretched to [0, 1]),
``decoded.npz`` (arrays ``images`` at R x R, ``native``, ``labels``) and ``summary.json``
(shapes and file names) to --out.
"""
import argparse
import json
import os

import jax
import numpy as np

from jaxdd import data, io, param, viz


def make_tiny_ddif_set(path, seed=0, warmup_steps=200):
    """Fit 2 fields per class to real digits (8x8x1) and save them as a synthetic set."""
    train, _ = data.load_dataset("digits", resolution=8)
    ddif = param.get("ddif")
    cfg = ddif.default_config()
    cfg.ipc, cfg.width, cfg.num_layers = 2, 5, 2      # 51 floats a field: 2 fields a class
    # SIREN frequencies: the published w0 = 30 is far above what 8 samples per axis pin
    # down, and such a field oscillates between the samples when decoded finer; w0 = 5
    # keeps it smooth between them
    cfg.w0_initial, cfg.w0 = 5.0, 5.0
    cfg.warmup_steps, cfg.warmup_lr, cfg.progress = warmup_steps, 1e-2, False
    params, aux = ddif.init(jax.random.key(seed), data.images_by_class(train), cfg)
    io.save_synthetic(path, param_name="ddif", params=params, aux=aux, syn_lr=0.01,
                      meta={"dataset": {"name": "digits", "resolution": 8},
                            "note": "examples/decode_resolution.py warm-up only"})
    print(f"made {path}: {len(aux['labels'])} fields, budget {ddif.budget(params, aux)} "
          f"floats, warm-up MSE {aux['warmup_final_mse']:.4f}")
    return path


def for_display(images):
    """Each image stretched to [0, 1] (the set lives in the dataset's standardized space)."""
    x = np.asarray(images, np.float32)
    lo = x.min(axis=(1, 2, 3), keepdims=True)
    hi = x.max(axis=(1, 2, 3), keepdims=True)
    return (x - lo) / np.maximum(hi - lo, 1e-8)


def save_class_grid(path, images, labels):
    """One row per class (the sets are stored class-major: class 0's images first)."""
    per_class = int(np.bincount(labels).max())
    order = np.argsort(labels, kind="stable")
    return viz.save_grid(path, for_display(images[order]), nrow=per_class)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", default="",
                    help="a synthetic.msgpack; none: make a tiny DDiF set in --out")
    ap.add_argument("--resolution", type=int, default=32, help="decode at R x R")
    ap.add_argument("--out", default="decoded", help="output folder")
    ap.add_argument("--warmup-steps", type=int, default=200, help="for the tiny set only")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    path = args.path or make_tiny_ddif_set(os.path.join(args.out, "synthetic.msgpack"),
                                           warmup_steps=args.warmup_steps)
    d = io.load_synthetic(path)           # {'param', 'params', 'aux', 'syn_lr', 'meta'}
    pm = param.get(d["param"])            # the parameterization's pure functions
    labels = np.asarray(d["aux"]["labels"])

    r = args.resolution

    def decode_at(resolution):            # decode is pure: jit it (aux is a constant)
        return jax.jit(lambda p: pm.decode(p, d["aux"], resolution=resolution))(d["params"])

    native = np.asarray(decode_at(None))                  # the training grid
    try:                                  # the same parameters on an R x R grid
        images = decode_at(r)
    except NotImplementedError:           # no continuous form: resize the decoded pixels
        images, _, _ = io.decode_synthetic(d, resolution=r)
    images = np.asarray(images)
    print(f"{d['param']}: decoded {native.shape} natively, {images.shape} at "
          f"resolution {r}")

    np.savez(os.path.join(args.out, "decoded.npz"), images=images, native=native,
             labels=labels)
    grid_native = save_class_grid(os.path.join(args.out, "grid_native.png"), native, labels)
    grid = save_class_grid(os.path.join(args.out, f"grid_{r}.png"), images, labels)
    summary = {"param": d["param"], "synthetic": os.path.abspath(path),
               "resolution": r, "native_shape": list(native.shape),
               "shape": list(images.shape), "num_classes": int(labels.max()) + 1,
               "per_class": int(np.bincount(labels).max()),
               "grid_native": os.path.abspath(grid_native), "grid": os.path.abspath(grid),
               "arrays": os.path.abspath(os.path.join(args.out, "decoded.npz"))}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"wrote {grid_native}, {grid} and {summary['arrays']}")
    return summary


if __name__ == "__main__":
    main()
