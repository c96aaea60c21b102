"""Helpers shared by the parity fixtures (tests/parity/make_*.py) and tests/test_parity_*.py.

A fixture is one small .npz under tests/parity/fixtures/, made ONCE by running the authors'
PyTorch code on tiny deterministic inputs:

    python tests/parity/make_<name>.py --ref=/path/to/<authors' repository checkout>

The generator scripts need torch (and kornia where the authors use it) and a local copy of
the authors' repository; CI never runs them, it only reads the stored .npz. Each fixture
records the repository, its commit, the generating script and the torch version under the
key ``meta`` (a JSON string), so a reader can regenerate and diff it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


# ---- generator side (needs the authors' repository; never imported by the tests) ----------
def add_reference_path(ref: str, subdir: str = "") -> str:
    """Put the authors' code directory on sys.path (generator scripts only) and return it."""
    path = os.path.abspath(os.path.join(ref, subdir))
    if not os.path.isdir(path):
        raise SystemExit(f"authors' code not found at {path}: pass --ref=<checkout of the repo>")
    if path not in sys.path:
        sys.path.insert(0, path)
    return path


def stub_torchvision() -> None:
    """Import-time stand-ins for torchvision (not installed next to the CPU torch here): the
    authors' utils.py imports it at module level but the functions the fixtures call never
    use it. A real torchvision, when importable, is left alone."""
    import types

    try:
        import torchvision  # noqa: F401
        return
    except ImportError:
        pass
    for mod in ("torchvision", "torchvision.datasets", "torchvision.transforms"):
        sys.modules.setdefault(mod, types.ModuleType(mod))
    sys.modules["torchvision"].datasets = sys.modules["torchvision.datasets"]
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]


def repo_commit(ref: str) -> str:
    try:
        return subprocess.check_output(["git", "-C", ref, "rev-parse", "HEAD"], text=True).strip()
    except Exception:  # noqa: BLE001 - a copy without .git still makes a fixture
        return "unknown"


def save_fixture(name: str, *, repo: str, ref: str, script: str, **arrays) -> str:
    """Write tests/parity/fixtures/<name>.npz with the arrays and a `meta` JSON entry."""
    import torch  # the generator side always has torch

    os.makedirs(FIXTURES, exist_ok=True)
    meta = dict(repository=repo, commit=repo_commit(ref), script=os.path.basename(script),
                torch=torch.__version__)
    out = os.path.join(FIXTURES, f"{name}.npz")
    np.savez_compressed(out, meta=np.array(json.dumps(meta)),
                        **{k: np.asarray(v) for k, v in arrays.items()})
    print(f"wrote {out} ({os.path.getsize(out) / 1024:.1f} KiB) from {repo}@{meta['commit'][:12]}")
    return out


# ---- test side -------------------------------------------------------------------------------
def load_fixture(name: str) -> dict:
    """The arrays of tests/parity/fixtures/<name>.npz (+ 'meta' as a dict). Fails, never skips,
    when the fixture is missing: a parity test that cannot run is a defect."""
    path = os.path.join(FIXTURES, f"{name}.npz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"parity fixture {path} is missing; regenerate it with "
                                f"tests/parity/make_*.py (see tests/parity/common.py)")
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    out["meta"] = json.loads(str(out["meta"]))
    return out
