"""CFM: `python launch/cfm.py --config=configs/cfm_pixel.py --workdir=/tmp/cfm`.

The same run as `python launch/distill.py --config=configs/cfm_{pixel,fred,ddif,nsd}.py`
(the generic loop: squeeze + statistics cached, recover with `jaxdd.objective.cfm`, soft-label
relabel; jaxdd/teacher.py), followed by the spectral diagnostic of the recovered set through the
teacher (<workdir>/spectral.png / .json; --nodiagnostic skips it).

Flags:
  --config   configs/cfm_<param>.py[:variant];
             fields overridable with --config.objective.filter=lfm etc.
  --workdir  where the run lives (default workdirs/<config name>-<variant>); re-running the
             same command on the same workdir resumes.
  --mode     all (default) | squeeze (train or load the teacher and its statistics only,
             e.g. to share them through objective.squeeze.dir)
"""
import os
import sys

# Small LAPACK calls (the (Psi + beta I) solves on CPU) run ~1000x slower when OpenBLAS
# threads compete for busy cores; one thread is plenty for d x d matrices. Must be set
# before numpy / jax load OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jaxdd import assemble  # noqa: E402
from jaxdd.config import apply_model_overrides, pop_model_override_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", "configs/cfm_pixel.py", "CFM config file")
_WORKDIR = flags.DEFINE_string("workdir", None, "run directory (resumable)")
_MODE = flags.DEFINE_enum("mode", "all", ["squeeze", "all"], "which stage(s) to run")
_DIAG = flags.DEFINE_bool("diagnostic", True, "write the spectral diagnostic at the end")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "disable progress bars")

_COMPILE_CACHE = flags.DEFINE_string(
    "compile_cache", None, "persistent XLA compilation cache directory (default: "
    "$JAXDD_COMPILE_CACHE or ~/.cache/jaxdd/xla; 'off' disables)")
_MODEL_OVERRIDES = {}
_ARGV = list(sys.argv)  # as given, for the resume command


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
    from jaxdd.runtime import enable_compile_cache
    enable_compile_cache(_COMPILE_CACHE.value)  # before any compilation
    from jaxdd import distill, experts, guards, locks, teacher, validate
    from jaxdd.bench import spectral
    from jaxdd.checkpoints import stop_summary
    from jaxdd.config import default_workdir
    from jaxdd.workdir import WorkdirError

    cfg = apply_model_overrides(_CONFIG.value, _MODEL_OVERRIDES)
    if cfg.objective.get("name") != "cfm":
        raise app.UsageError(f"launch/cfm.py runs CFM configs (configs/cfm_*.py); this one has "
                             f"objective {cfg.objective.get('name')!r}: use launch/distill.py")
    if _WORKDIR.value is not None and not _WORKDIR.value.strip():
        raise app.UsageError("--workdir is empty: give a directory, or leave the flag out "
                             "for the default (workdirs/<config name>-<variant>)")
    workdir = _WORKDIR.value or default_workdir(
        config_flags.get_config_filename(flags.FLAGS["config"]))
    progress = not _NO_PROGRESS.value
    print(f"[cfm] workdir: {workdir}")
    try:
        validate.output_dirs(validate.Report(), {"workdir": workdir}).raise_if_errors(
            "workdir")
        if _MODE.value == "squeeze":
            train, test = assemble.data(cfg)
            t = teacher.prepare_teacher(cfg.objective, train, test,
                                        cfg.objective.squeeze.get("dir", "") or workdir,
                                        progress=progress)
            print(f"[cfm] teacher ready (test accuracy {t['test_acc']:.4f})")
            return
        # Ctrl-C / SIGTERM / a full disk: one line and the command that resumes; the
        # workdir's lock (taken by distill.run) released on any exit
        with locks.clean_stops(lambda full: stop_summary(workdir, full),
                               locks.resume_command(_ARGV, "workdir", workdir),
                               prefix="[cfm]", default_path=workdir, process=True):
            distill.run(cfg, workdir, progress=progress)
    except (validate.ConfigError, WorkdirError, guards.NonFiniteError, locks.LockedError,
            experts.ExpertMismatchError, experts.MissingExpertsError) as e:
        raise SystemExit(f"[cfm] {type(e).__name__}: {e}") from None
    print(f"[cfm] done: {os.path.join(workdir, 'result.json')}")
    if _DIAG.value:
        from jaxdd.viz import write_spectral_report
        png, _ = write_spectral_report(spectral.cfm_workdir_report(workdir, progress=progress),
                                       os.path.join(workdir, "spectral"))
        print(f"[cfm] spectral diagnostic: {png}")


if __name__ == "__main__":
    # absl config flags read overrides from sys.argv: take these out first
    sys.argv[:], overrides = pop_model_override_flags(sys.argv)
    _MODEL_OVERRIDES.update(overrides)
    app.run(main)
