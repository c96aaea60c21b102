"""Build (or resume) an expert buffer for trajectory matching.

    python launch/buffer.py --config=configs/buffer.py:digits
    python launch/buffer.py --config=configs/buffer.py:cifar10 --buffer_dir=buffers/c10
    python launch/buffer.py --config=configs/buffer.py:cifar10,num_experts=10 \
        --config.epochs=20 --config.model.overrides.width=64

Re-running the same command resumes: complete experts are skipped; a damaged expert is set
aside (<buffer_dir>/damaged/) and retrained. The config and the data are validated first
(every problem at once); nothing is created when they fail. One build per buffer dir at a
time (a second one refuses, naming the holder: `jaxdd.locks`); Ctrl-C / SIGTERM / a full
disk end with one line: the experts stored, the command that resumes (exit 130 / 143 / 1).
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
_ARGV = list(sys.argv)  # as given, for the resume command

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
    from jaxdd import locks

    cfg = apply_model_overrides(_CONFIG.value, _MODEL_OVERRIDES)
    if _BUFFER_DIR.value is not None and not _BUFFER_DIR.value.strip():
        raise app.UsageError("--buffer_dir is empty: give a directory, or leave the flag out "
                             "for the config's buffer_dir")
    buffer_dir = (_BUFFER_DIR.value or cfg.get("buffer_dir")
                  or default_buffer_dir(cfg.dataset, cfg.model.name))
    cfg.buffer_dir = buffer_dir
    print(f"[buffer] config:\n{cfg}")
    from jaxdd import validate
    try:  # a buffer dir that cannot be one: said before the lock creates it
        validate.output_dirs(validate.Report(), {"buffer dir": buffer_dir}).raise_if_errors(
            "buffer dir")
    except validate.ConfigError as e:
        raise SystemExit(f"[buffer] {type(e).__name__}: {e}") from None
    resume = locks.resume_command(_ARGV, "buffer_dir", buffer_dir)
    # Ctrl-C / SIGTERM / a full disk: one line (the experts stored), the command that
    # resumes; the buffer's lock (taken first: a second build refuses at once) released
    try:
        with locks.clean_stops(lambda full: _saved(buffer_dir, int(cfg.num_experts), full),
                               resume, prefix="[buffer]", default_path=buffer_dir), \
                locks.hold(buffer_dir, "buffer dir", multiprocess=_DISTRIBUTED.value,
                           command=locks.command_line(_ARGV),
                           advice="Wait for it to finish, then run this again (the experts "
                           "it stores are reused), or use another --buffer_dir"):
            _build(cfg, buffer_dir)
    except locks.LockedError as e:
        raise SystemExit(f"[buffer] LockedError: {e}") from None


def _saved(buffer_dir, n, disk_full):
    have = len([i for i in experts.list_experts(buffer_dir) if i < n])
    tail = "they are intact" if disk_full else "an expert in training is trained again"
    return f"{have} of {n} experts are stored complete in {buffer_dir} ({tail})"


def _build(cfg, buffer_dir):
    from jaxdd import assemble, validate

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
        from jaxdd import validate_run  # experts are stateless networks (no BatchNorm)
        validate_run.stateless_model(rep, cfg, train.image_shape, train.num_classes,
                                     why="experts")
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
