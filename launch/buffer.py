"""Build (or resume) an expert buffer for trajectory matching.

    python launch/buffer.py --config=configs/buffer.py:digits
    python launch/buffer.py --config=configs/buffer.py:cifar10 --buffer_dir=buffers/c10
    python launch/buffer.py --config=configs/buffer.py:cifar10,num_experts=10 \
        --config.epochs=20 --config.model.overrides.width=64

Re-running the same command resumes: complete experts are skipped; a damaged expert is set
aside (<buffer_dir>/damaged/) and retrained. The config and the data are validated first
(every problem at once); nothing is created when they fail.
"""
from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from jaxdd import experts
from jaxdd.config import apply_model_overrides, default_buffer_dir, pop_model_override_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/buffer.py", "Buffer config (configs/buffer.py:<variant>).",
    lock_config=False)
_BUFFER_DIR = flags.DEFINE_string(
    "buffer_dir", None, "Where the experts go (overrides config.buffer_dir).")
_QUIET = flags.DEFINE_bool("quiet", False, "No progress bars.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "call jax.distributed.initialize() (multi-host): every process "
    "loads the whole training set and trains its share of the experts (i % processes)")
_MODEL_OVERRIDES = {}

_COMPILE_CACHE = flags.DEFINE_string(
    "compile_cache", None, "persistent XLA compilation cache directory (default: "
    "$JAXDD_COMPILE_CACHE or ~/.cache/jaxdd/xla; 'off' disables)")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # orbax logs every file operation at INFO
    from jaxdd.runtime import enable_compile_cache
    enable_compile_cache(_COMPILE_CACHE.value)  # before any compilation
    if _DISTRIBUTED.value:  # before any JAX work; JAX_* env vars or the cluster's
        from jaxdd.sharding import initialize_distributed
        initialize_distributed()
    from jaxdd import assemble, validate

    cfg = apply_model_overrides(_CONFIG.value, _MODEL_OVERRIDES)
    buffer_dir = (_BUFFER_DIR.value or cfg.get("buffer_dir")
                  or default_buffer_dir(cfg.dataset, cfg.model.name))
    cfg.buffer_dir = buffer_dir
    print(f"[buffer] config:\n{cfg}")
    # one validation pass (config + data) before anything is created or trained
    rep = validate.buffer_config(cfg)
    p = validate.npz_path(cfg.dataset.name)
    if p is not None:
        rep += validate.npz_file(p)
    train = test = None
    if not rep.errors:
        try:  # the whole training split on every process (experts train on all of it)
            train, test = assemble.data(cfg, shard=None)
        except Exception as e:  # noqa: BLE001 -- reported with the other problems
            rep.error(f"dataset {cfg.dataset.name!r}: {e}")
    if train is not None:
        rep += validate.data(train, test, model_name=cfg.model.name,
                             overrides=cfg.model.get("overrides"),
                             dsa_strategy=cfg.get("dsa_strategy"))
    try:
        rep.raise_if_errors("buffer config")
        experts.build_buffer(buffer_dir, cfg, train=train, test=test,
                             progress=not _QUIET.value)
    except (validate.ConfigError, experts.ExpertMismatchError) as e:
        raise SystemExit(f"[buffer] {type(e).__name__}: {e}") from None


if __name__ == "__main__":
    # absl config flags read overrides from sys.argv: take these out first
    sys.argv[:], overrides = pop_model_override_flags(sys.argv)
    _MODEL_OVERRIDES.update(overrides)
    app.run(main)
