"""CFM pipeline: `python launch/cfm.py --config=configs/cfm.py --mode=all --workdir=/tmp/cfm`.

The standalone UniDD pipeline (pixels only, staged, with the spectral diagnostic). CFM as an
objective of the generic loop, for every parameterization, is
`python launch/distill.py --config=configs/cfm_{pixel,fred,ddif,nsd}.py` (same teacher
training, recover loss and relabel protocol; jaxdd/objective/cfm.py).

Modes:
  squeeze   train the teacher (cached: <squeeze dir>/teacher.msgpack; resumes mid-training)
  recover   statistics of the real data (cached) + recover the IPC batches (each cached)
  evaluate  relabel + evaluate the recovered set (soft-label protocol) -> result.json
  all       all of the above, then the spectral diagnostic (spectral.png / .json)
Re-running the same command on the same workdir resumes: finished stages are loaded.

Flags:
  --config   configs/cfm.py[:variant] (see its docstring); fields overridable with
             --config.recover.iterations=100 etc.
  --workdir  where the run lives (default workdirs/cfm-<variant>).
"""
import os
import time

# Small LAPACK calls (the (Psi + beta I) solves on CPU) run ~1000x slower when OpenBLAS
# threads compete for busy cores; one thread is plenty for d x d matrices. Must be set
# before numpy / jax load OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", "configs/cfm.py", "CFM config file")
_WORKDIR = flags.DEFINE_string("workdir", None, "run directory (resumable)")
_MODE = flags.DEFINE_enum("mode", "all", ["squeeze", "recover", "evaluate", "all"],
                          "which stage(s) to run")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "disable progress bars")


def main(argv):
    del argv
    from jaxdd import cfm
    from jaxdd.config import default_workdir

    cfg = _CONFIG.value
    workdir = _WORKDIR.value or default_workdir(
        config_flags.get_config_filename(flags.FLAGS["config"]))
    print(f"[cfm] workdir: {workdir}")
    t0 = time.time()
    p = cfm.Pipeline(cfg, workdir, progress=not _NO_PROGRESS.value)
    mode = _MODE.value
    if mode in ("squeeze", "all"):
        p.squeeze()
    if mode in ("recover", "all"):
        p.statistics()
        p.recover()
    if mode in ("evaluate", "all"):
        p.evaluate()
    if mode == "all" and cfg.diagnostic.get("enabled", True):
        from jaxdd.viz import write_spectral_report
        png, js = write_spectral_report(p.diagnostic(), os.path.join(workdir, "spectral"))
        print(f"[cfm] spectral diagnostic: {png}")
    print(f"[cfm] done ({mode}) in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    app.run(main)
