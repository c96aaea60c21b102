"""Distill a synthetic set: `python launch/distill.py --config=configs/tm_ddif.py`.

Flags:
  --config   an ml_collections config file, optionally with a variant string
             (`configs/tm_pixel.py:cifar10,ipc=10`); fields overridable with
             `--config.iterations=100` etc.
  --workdir  where the run lives (default: workdirs/<config name>-<variant>); re-running
             the same command on the same workdir resumes.
"""
import os

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", "configs/tm_pixel.py",
                                          "distillation config file")
_WORKDIR = flags.DEFINE_string("workdir", None, "run directory (resumable)")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "disable progress bars")
_MULTIHOST = flags.DEFINE_bool("distributed", False,
                               "call jax.distributed.initialize() (multi-host runs)")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
    if _MULTIHOST.value:
        import jax
        jax.distributed.initialize()
    from jaxdd import distill
    from jaxdd.config import default_workdir

    cfg = _CONFIG.value
    workdir = _WORKDIR.value or default_workdir(
        config_flags.get_config_filename(flags.FLAGS["config"]))
    print(f"[jaxdd] workdir: {workdir}")
    distill.run(cfg, workdir, progress=not _NO_PROGRESS.value)
    print(f"[jaxdd] done: {os.path.join(workdir, 'result.json')}")


if __name__ == "__main__":
    app.run(main)
