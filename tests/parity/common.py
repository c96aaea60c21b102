"""Helpers shared by the parity fixtures (tests/parity/make_*.py) and tests/test_parity_*.py.

A fixture is one small .npz under tests/parity/fixtures/, made ONCE by running the authors'
PyTorch code on tiny deterministic inputs:

    python tests/parity/make_<name>.py --ref=/path/to/<authors' repository checkout>

The generator scripts need torch (and kornia where the authors use it) and a local copy of
the authors' repository; CI never runs them, it only reads the stored .npz. Each fixture
records the repository, its commit, the generating script and the torch version under the
key ``meta`` (a JSON string), so a reader can regenerate and diff it.

Provenance (checked by tests/test_parity_provenance.py):
* every generator takes ``--commit`` (default: the pinned commit of its repository,
  ``PINNED``); when ``--ref`` is a git checkout its HEAD must be that commit, and the commit
  is recorded in ``meta['commit']``;
* where a generator RESTATES lines of the authors' code instead of importing them (a loop
  kept inline in their ``main()``), ``RESTATED[<fixture>]`` lists those line ranges with the
  sha256 of their text at the pinned commit: ``save_fixture`` recomputes the hashes from the
  checkout and refuses to write the fixture when the authors' lines differ, and records
  them in ``meta['sources']``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


# The authors' repositories and the commits every fixture is generated from (README
# "Fidelity to the authors' code").
PINNED = {
    "GeorgeCazenavette/mtt-distillation": "50dccea47ba48b9cfb3b9c59375d7da92e4e603b",
    "sdh0818/FreD": "9f35a7a3ade68049ececbf4abb5f3936b38b3fd0",
    "aailab-kaist/DDiF": "b628e7b78a14ed6aa497746c1ba4002b0d03b048",
    "bdy9527/UniDD": "4afb992a9719e77e5f8bf1e3c9da05051b766e4c",
}

# Fixture -> the authors' lines its generator restates: (path in the repository, first line,
# last line, sha256 of those lines' text at the pinned commit, see `source_sha256`).
RESTATED: dict = {
    # MTT distill.py: student set-up; one TM iteration
    "mtt_tm": (
        ("distill.py", 296, 303,
         "1795f6aa127be70d2e25d5eea2a557cd2629c32182e33ef2c9ea7a2a82371bb2"),
        ("distill.py", 325, 393,
         "860c96d812798b7f682b1da8f434d9ddfa6891077426f1fc16bace7a793e9fb2"),
    ),
    # MTT utils.py get_dataset: ToTensor-only transform; the --zca block
    "zca": (
        ("utils.py", 58, 59,
         "05597f4076949058b26cc5c8cede2f1d2e9d92c985b4795c3f3c4875d1ef9ee6"),
        ("utils.py", 137, 165,
         "ffd5492303aa99dcfa236bd0d0d8502d479d97108c197f3d4a67c56eef5773ce"),
    ),
    # MTT buffer.py: criterion, train loader, teacher SGD
    "mtt_expert": (
        ("buffer.py", 55, 55,
         "4241f6e2893f84de26a23ad38a808ef458bc9ed17e40d880a16af3ff21d6912b"),
        ("buffer.py", 59, 60,
         "95dd0640d64e4fb0fe121287ebd11fe23677ea452e7b109fcebb8ed0a52beba9"),
        ("buffer.py", 73, 74,
         "f1234c7fd82b88d1302b8519e3aae0e6d2d5bd7b4e48479d05ae4f55203f1c5b"),
    ),
    # FreD SynSet.init_mask: the EVR loop
    "fred": (
        ("TM/main_TM_FreD.py", 80, 101,
         "f573dd28541455c75fc595e90c595491f6cc396f4d7c3b6ff1917ba4afe6969d"),
    ),
    # FreD DM ConvNet-branch loss loop; DC loss loop and network update
    "dm_dc": (
        ("DM/main_DM_FreD.py", 297, 317,
         "45c8038253a9efa0580bc7d239d4853149b5314c6aeace5a050be4bfc41d5792"),
        ("DC/main_DC_FreD.py", 286, 313,
         "ef5c9ef1b8ac11c92c467c99f5855c9abb1a10329977338822cc6388ae641dd8"),
        ("DC/main_DC_FreD.py", 324, 329,
         "26aee07a5e322e387ff45a9712dd16a0c50a43f2fd8a4b20ffd33d756536c1b2"),
    ),
    # UniDD synthesis_small.py: the cosine beta schedule
    "unidd": (
        ("synthesis_small.py", 91, 92,
         "258bca4b2e03a9e42fe85d5631e3dff51759c1ca2e6d5797ca2a08b41a755f8d"),
    ),
    # DDiF voxel DM / DC loss loops; video DM loss loop
    "modal_losses": (
        ("3D_Voxel/main_DM.py", 157, 191,
         "1a7ab53e1294a54da2ff3707865c10f9fed5d897a3ae2b587891e449cac2c4ef"),
        ("3D_Voxel/main_DC.py", 199, 224,
         "dcc22fdb2414a98465afb35e7221e17e7d878376b58412c61fee0ff601b73f3c"),
        ("Video/distill_DDiF.py", 104, 134,
         "98bdbdb60b922ac01ff97527c91724adcd402c18248e520111d78df824f8feee"),
    ),
}


def source_sha256(text: str, first: int, last: int) -> str:
    """sha256 of lines first..last (1-based, inclusive) of `text`, '\n'-joined, no
    trailing newline."""
    import hashlib

    lines = text.splitlines()
    if not 1 <= first <= last <= len(lines):
        raise ValueError(f"lines {first}..{last} outside a file of {len(lines)} lines")
    return hashlib.sha256("\n".join(lines[first - 1:last]).encode()).hexdigest()


# ---- generator side (needs the authors' repository; never imported by the tests) ----------
def add_commit_arg(ap, repo: str, flag: str = "--commit") -> None:
    """`flag` (default: the pinned commit of `repo`): the commit the checkout must be at."""
    ap.add_argument(flag, default=PINNED[repo],
                    help=f"commit of {repo} the checkout must be at (default: the pinned "
                         f"{PINNED[repo][:7]}); recorded in the fixture")


def checked_commit(ref: str, commit: str) -> str:
    """The full commit of the checkout `ref`, which must be `commit` (full or abbreviated).

    A git checkout (`ref` is its top level): its HEAD, refused when it is another commit. A
    plain copy (no .git): `commit` as given (it cannot be checked)."""
    commit = str(commit).strip().lower()
    if len(commit) < 7:
        raise SystemExit(f"--commit {commit!r}: give at least 7 hex digits")
    try:
        top = subprocess.check_output(["git", "-C", ref, "rev-parse", "--show-toplevel"],
                                      text=True, stderr=subprocess.DEVNULL).strip()
        head = subprocess.check_output(["git", "-C", ref, "rev-parse", "HEAD"], text=True,
                                       stderr=subprocess.DEVNULL).strip()
    except Exception:  # noqa: BLE001 - not a git checkout
        return commit
    if os.path.realpath(top) != os.path.realpath(ref):
        return commit  # a plain copy inside some other repository
    if not head.startswith(commit):
        raise SystemExit(f"{ref} is at {head}, not at --commit {commit}: check out the "
                         f"pinned commit (or pass the one you mean to record)")
    return head


def restated_sources(name: str, ref: str) -> list:
    """RESTATED[name], each range re-hashed from the checkout `ref`; raises when the
    authors' lines differ from the ones the generator restates."""
    out = []
    for path, first, last, sha in RESTATED.get(name, ()):
        with open(os.path.join(ref, path)) as f:
            got = source_sha256(f.read(), first, last)
        if got != sha:
            raise SystemExit(f"{ref}/{path}:{first}-{last} differs from the lines "
                             f"tests/parity/make_{name}.py restates (sha256 {got[:12]} != "
                             f"{sha[:12]}): read the authors' new lines, update the "
                             f"generator and RESTATED, then regenerate")
        out.append([path, first, last, sha])
    return out


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


def save_fixture(name: str, *, repo: str, ref: str, script: str, commit: str,
                 **arrays) -> str:
    """Write tests/parity/fixtures/<name>.npz with the arrays and a `meta` JSON entry.

    commit: the generator's --commit, checked against the checkout `ref` (`checked_commit`);
    the lines the generator restates (RESTATED[name]) are re-hashed from `ref` first."""
    import torch  # the generator side always has torch

    commit = checked_commit(ref, commit)
    sources = restated_sources(name, ref)
    os.makedirs(FIXTURES, exist_ok=True)
    meta = dict(repository=repo, commit=commit, script=os.path.basename(script),
                torch=torch.__version__)
    if sources:
        meta["sources"] = sources
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
