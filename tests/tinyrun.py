"""The tiny distillation run shared by the loop, reliability and multi-host tests: a 3-class
8x8 gray npz dataset and a pixel TM config on a 4-wide one-layer ConvNet (seconds per run)."""
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subprocess_env():
    """The environment for a subprocess that imports jaxdd and tests/ (CPU JAX)."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join([ROOT, os.path.join(ROOT, "tests"),
                                         env.get("PYTHONPATH", "")])
    return env


def write_npz(path, n=60, k=3, side=8, **extra):
    """n images of k classes (class prototypes + noise, in [0, 1]) saved to `path`; `extra`
    arrays are stored beside them (e.g. to make a damaged file)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(k), n // k)
    base = rng.uniform(size=(k, side, side, 1))
    images = np.clip(base[labels] + 0.2 * rng.normal(size=(n, side, side, 1)), 0, 1)
    arrays = dict(images=images.astype(np.float32), labels=labels.astype(np.int32))
    arrays.update(extra)
    np.savez(path, **arrays)
    return str(path)


def tiny_config(npz_path, buffer_dir="", ipc=1, **fields):
    """Pixel TM on `npz_path`: 2 experts x 2 epochs, 2 student steps, 4 iterations, a
    checkpoint and a log line every iteration, no final evaluation. `fields`: dotted names
    with `__` for the dots (`objective__syn_steps=3`)."""
    from jaxdd import config as C
    from jaxdd.param import pixel

    cfg = C.base_config("digits", ipc)
    cfg.dataset.name = npz_path
    cfg.dataset.resolution = None
    cfg.model.name = "ConvNetD1W4"
    cfg.param = pixel.default_config()
    cfg.param.name, cfg.param.ipc = "pixel", ipc
    cfg.iterations = 4
    cfg.checkpoint_every = 1
    cfg.log_every = 1
    cfg.dsa_strategy = "flip"
    cfg.buffer.num_experts = 2
    cfg.buffer.epochs = 2
    cfg.buffer.experts_per_group = 2
    cfg.buffer.buffer_dir = buffer_dir
    cfg.objective.syn_steps = 2
    cfg.objective.max_start_epoch = 1
    cfg.objective.expert_epochs = 1
    cfg.eval.final = False
    return set_fields(cfg, **fields)


def set_fields(cfg, **fields):
    """Set config fields given as dotted names with `__` for the dots
    (`objective__syn_steps=3`); returns cfg."""
    for name, value in fields.items():
        *path, last = name.split("__")
        node = cfg
        for p in path:
            node = node[p]
        node[last] = value
    return cfg
