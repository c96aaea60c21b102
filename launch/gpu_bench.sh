#!/usr/bin/env bash
# The whole jaxdd benchmark on one GPU machine in under 8 minutes (issue 17).
#
#   bash launch/gpu_bench.sh            # GPU: configs/bench_gpu.py -> bench_results/bench_gpu.json
#   bash launch/gpu_bench.sh --smoke    # tiny shapes, any machine (CPU is fine), ~1-3 min
#   OUT=/path/result.json bash launch/gpu_bench.sh
#
# The machine needs jax (with its CUDA plugin), flax, optax and torch (for the PyTorch
# rows). jaxdd itself is used from this checkout (PYTHONPATH, nothing is installed). The
# benchmark path also imports ml_collections and tqdm (and absl-py, which optax already
# pulls in): if they are missing, the script installs them from ./wheels or $WHEELS
# (pure-Python wheels; make them on a connected machine with
#   pip download --no-deps -d wheels ml_collections tqdm absl-py
# and carry the folder along). Nothing is downloaded here.
#
# A hard wall-clock limit (LIMIT_S, default 470 s) stops the run; the JSON is rewritten
# after every section, so a run cut short still leaves the sections it finished.
set -u
cd "$(dirname "$0")/.."
SMOKE=0
for a in "$@"; do
  case "$a" in
    --smoke) SMOKE=1 ;;
    *) echo "usage: bash launch/gpu_bench.sh [--smoke]" >&2; exit 2 ;;
  esac
done
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"  # torch shares the GPU
WHEELS="${WHEELS:-$PWD/wheels}"

missing=$(python - <<'PY'
import importlib.util
print(" ".join(m for m in ("ml_collections", "tqdm", "absl") if importlib.util.find_spec(m) is None))
PY
)
if [ -n "$missing" ]; then
  if [ -d "$WHEELS" ]; then
    echo "installing from $WHEELS: $missing"
    pip install --no-index --no-deps --find-links "$WHEELS" $(echo "$missing" | sed 's/absl/absl-py/') || exit 3
  else
    echo "missing Python packages: $missing (bring their wheels in $WHEELS, see this script's header)" >&2
    exit 3
  fi
fi

if [ "$SMOKE" = 1 ]; then
  CONFIG="configs/bench_gpu.py:smoke"; DEFAULT_OUT="bench_results/bench_gpu_smoke.json"
else
  CONFIG="configs/bench_gpu.py"; DEFAULT_OUT="bench_results/bench_gpu.json"
fi
OUT="${OUT:-$DEFAULT_OUT}"
python - <<'PY'
import jax, sys
print("jax", jax.__version__, "backend", jax.default_backend(), "devices", jax.devices(), flush=True)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.cuda.is_available(), flush=True)
except ImportError:
    print("torch: not installed (PyTorch rows skipped)", flush=True)
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
timeout "${LIMIT_S:-470}" python launch/benchmark.py --config="$CONFIG" --out="$OUT"
rc=$?
if [ $rc = 124 ]; then echo "stopped at LIMIT_S=${LIMIT_S:-470} s; partial results in $OUT" >&2; fi
exit $rc
