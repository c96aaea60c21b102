"""Build (or resume) an expert buffer for trajectory matching.

    python launch/buffer.py --config=configs/buffer.py:digits
    python launch/buffer.py --config=configs/buffer.py:cifar10 --buffer_dir=buffers/c10
    python launch/buffer.py --config=configs/buffer.py:cifar10,num_experts=10 \
        --config.epochs=20

Re-running the same command resumes: complete experts are skipped.
"""
from __future__ import annotations

from absl import app, flags, logging
from ml_collections import config_flags

from jaxdd import experts

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/buffer.py", "Buffer config (configs/buffer.py:<variant>).",
    lock_config=False)
_BUFFER_DIR = flags.DEFINE_string(
    "buffer_dir", None, "Where the experts go (overrides config.buffer_dir).")
_QUIET = flags.DEFINE_bool("quiet", False, "No progress bars.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # orbax logs every file operation at INFO
    cfg = _CONFIG.value
    buffer_dir = _BUFFER_DIR.value or cfg.get("buffer_dir") or experts.default_buffer_dir(cfg)
    cfg.buffer_dir = buffer_dir
    print(f"[buffer] config:\n{cfg}")
    experts.build_buffer(buffer_dir, cfg, progress=not _QUIET.value)


if __name__ == "__main__":
    app.run(main)
