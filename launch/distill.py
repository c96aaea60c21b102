"""Distill a synthetic set: `python launch/distill.py --config=configs/tm_ddif.py`.

Flags:
  --config   an ml_collections config file, optionally with a variant string
             (`configs/tm_pixel.py:cifar10,ipc=10`); fields overridable with
             `--config.iterations=100` etc.; network options with
             `--config.model.overrides.<name>=<value>` (any keyword of the model).
  --workdir  where the run lives (default: workdirs/<config name>-<variant>, the name
             sanitized); re-running the same command on the same workdir resumes. One process
             at a time: a second one on a live run's workdir refuses, naming the holder
             (`jaxdd.locks`).
  --compile_cache  persistent XLA compilation cache (default $JAXDD_COMPILE_CACHE or
             ~/.cache/jaxdd/xla; 'off' disables): a rerun or resume with the same shapes
             loads its compiled steps instead of compiling them again.

The config and the data are validated first (every problem reported at once, nothing
written); a problem, a refused resume or a diverged run ends with a message, exit code 1.
Ctrl-C / SIGTERM end with one line (the last checkpoint, the command that resumes), exit
code 130 / 143; a full disk with one line (the path, the last good checkpoint), exit code 1.
"""
import os
import sys
import time

_T0 = time.time()

from absl import app, flags, logging
from ml_collections import config_flags

from jaxdd import guards
from jaxdd.config import apply_model_overrides, pop_model_override_flags

_CONFIG = config_flags.DEFINE_config_file("config", "configs/tm_pixel.py",
                                          "distillation config file")
_WORKDIR = flags.DEFINE_string("workdir", None, "run directory (resumable)")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "disable progress bars")
_MULTIHOST = flags.DEFINE_bool("distributed", False,
                               "call jax.distributed.initialize() (multi-host runs)")
_COMPILE_CACHE = flags.DEFINE_string(
    "compile_cache", None, "persistent XLA compilation cache directory (default: "
    "$JAXDD_COMPILE_CACHE or ~/.cache/jaxdd/xla; 'off' disables)")
_MODEL_OVERRIDES = {}


def main(argv):
    del argv
    from jaxdd import locks
    from jaxdd.checkpoints import stop_summary
    from jaxdd.config import default_workdir

    if _WORKDIR.value is not None and not _WORKDIR.value.strip():
        raise app.UsageError("--workdir is empty: give a directory, or leave the flag out "
                             "for the default (workdirs/<config name>-<variant>)")
    workdir = _WORKDIR.value or default_workdir(
        config_flags.get_config_filename(flags.FLAGS["config"]))
    print(f"[jaxdd] workdir: {workdir}")
    resume = locks.resume_command(_ARGV, "workdir", workdir)
    # a Ctrl-C / SIGTERM / full disk: one line (the last checkpoint, the resume command),
    # exit code 130 / 143 / 1; the workdir's lock is released on any exit
    with locks.clean_stops(lambda full: stop_summary(workdir, full), resume,
                           default_path=workdir, process=True):
        _run(workdir)


def _run(workdir):
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
    from jaxdd.runtime import enable_compile_cache
    enable_compile_cache(_COMPILE_CACHE.value)  # before any compilation
    if _MULTIHOST.value:  # before any JAX work; arguments from the cluster or JAX_* env vars
        from jaxdd.sharding import initialize_distributed
        initialize_distributed()
    from jaxdd import distill, experts, locks
    from jaxdd.validate import ConfigError
    from jaxdd.workdir import WorkdirError

    try:
        # a workdir that cannot be one (a file, under a file, not writable): said before the
        # lock (which creates the directory) and before any work
        from jaxdd import validate
        validate.output_dirs(validate.Report(), {"workdir": workdir}).raise_if_errors(
            "workdir")
        # the workdir's lock first (process 0 of a multi-host run): a second process on a
        # live run's workdir stops here, before reading any of its files
        with locks.hold(workdir, "workdir", multiprocess=_MULTIHOST.value,
                        command=locks.command_line(_ARGV),
                        advice="Wait for it to finish (re-running this command then "
                        "resumes or returns its result), or use another --workdir"):
            cfg = apply_model_overrides(_CONFIG.value, _MODEL_OVERRIDES)
            result = distill.run(cfg, workdir, progress=not _NO_PROGRESS.value)
    except (ConfigError, WorkdirError, guards.NonFiniteError,
            experts.ExpertMismatchError, experts.MissingExpertsError) as e:
        raise SystemExit(f"[jaxdd] {type(e).__name__}: {e}") from None
    print(f"[jaxdd] done: {os.path.join(workdir, 'result.json')}")
    names = {"data": "data", "init": "init", "objective_inputs": "objective inputs (experts / "
             "teacher)", "distill": "distillation", "evaluations": "evaluations during the run",
             "final": "final set + evaluations"}
    phases = ", ".join(f"{names.get(k, k)} {v:.1f} s"
                       for k, v in (result or {}).get("phase_seconds", {}).items())
    print(f"[jaxdd] time: {phases}; total {time.time() - _T0:.1f} s (from process start)")


_ARGV = list(sys.argv)  # as given (model override flags included), for the resume command


if __name__ == "__main__":
    # absl config flags read overrides from sys.argv: take these out first
    sys.argv[:], overrides = pop_model_override_flags(sys.argv)
    _MODEL_OVERRIDES.update(overrides)
    app.run(main)
