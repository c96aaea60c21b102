"""Parity fixture for ZCA whitening (issue 13 item 1): kornia's ZCAWhitening as the authors
call it, on tiny deterministic [0, 1] images.

    python tests/parity/make_zca.py --ref=<checkout of GeorgeCazenavette/mtt-distillation> \
        --ref-fred=<checkout of sdh0818/FreD> --ref-ddif=<checkout of aailab-kaist/DDiF>

(each checkout at its pinned commit: --commit, --commit-fred, --commit-ddif, defaults in
tests/parity/common.py PINNED.)

What the authors do with --zca (mtt-distillation utils.py; the same lines in FreD
TM/utils.py and DDiF TM/utils.py):
  * utils.py:58-59 (CIFAR10; 74-75 Tiny, 125-126 CIFAR100): transform = ToTensor() only,
    i.e. pixels uint8 / 255 in [0, 1], NO Normalize;
  * utils.py:137-149: stack the whole train split (NCHW float32), then
    zca = K.enhance.ZCAWhitening(eps=0.1, compute_inv=True); zca.fit(images);
    zca_images = zca(images)
  * utils.py:152-163: stack the test split and apply the SAME fitted zca (no refit);
  * utils.py:175-178 (TensorDataset): .detach().float() -- stays float32, no clamping.
  * distill.py / main_TM.py save images through zca.inverse_transform.
Those inline lines of get_dataset are re-stated below (the function itself needs torchvision
datasets); the ZCA is kornia's own class. Two cases:
  'a': 64 train / 16 test images of 4x4x3 (D = 48 features, N > D);
  'b': 20 train / 8 test images of 4x4x3 (N < D: a rank-deficient covariance).
Stored NCHW like the authors' tensors; the test transposes to jaxdd's NHWC.

The eps is NOT typed here: it is read (``ast``) from the authors' own
``ZCAWhitening(eps=...)`` calls. Every such call in the three repositories
(mtt-distillation utils.py, which buffer.py and distill.py use; FreD TM/utils.py; DDiF
TM/DM/DC utils.py) is recorded in ``zca_calls`` (JSON: repository, commit, path, line,
eps); they must all agree, and that eps (``authors_eps``) is the one kornia runs with
below. tests/test_parity_zca.py checks every config variant that uses ZCA against it.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity.common import (add_commit_arg, add_reference_path, checked_commit,  # noqa: E402
                           save_fixture)

MTT, FRED, DDIF = "GeorgeCazenavette/mtt-distillation", "sdh0818/FreD", "aailab-kaist/DDiF"


def zca_calls(ref: str):
    """[(path, line, eps)] of every `...ZCAWhitening(..., eps=<literal>, ...)` call in the
    .py files under `ref` (sorted by path, line); a call without a literal eps raises."""
    out = []
    for root, dirs, files in os.walk(ref):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for fn in sorted(files):
            if not fn.endswith(".py"):
                continue
            path = os.path.join(root, fn)
            with open(path) as f:
                text = f.read()
            if "ZCAWhitening" not in text:
                continue
            for node in ast.walk(ast.parse(text)):
                func = getattr(node, "func", None)
                name = getattr(func, "attr", getattr(func, "id", None))
                if not (isinstance(node, ast.Call) and name == "ZCAWhitening"):
                    continue
                eps = [k.value for k in node.keywords if k.arg == "eps"]
                if not eps:
                    raise SystemExit(f"{path}:{node.lineno}: ZCAWhitening without eps=")
                out.append((os.path.relpath(path, ref), node.lineno,
                            float(ast.literal_eval(eps[0]))))
    return sorted(out)


def _images(rng, n):
    """Deterministic uint8 NCHW images with correlated pixels (smooth field + noise)."""
    base = rng.normal(size=(n, 3, 2, 2))
    up = base.repeat(2, axis=2).repeat(2, axis=3)  # 4x4, spatially correlated
    mix = np.array([[1.0, 0.6, 0.3], [0.6, 1.0, 0.6], [0.3, 0.6, 1.0]])  # channel correlation
    x = np.einsum("dc,nchw->ndhw", mix, up) + 0.4 * rng.normal(size=(n, 3, 4, 4))
    x = 128 + 40 * x
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help=f"checkout of {MTT}")
    add_commit_arg(ap, MTT)
    ap.add_argument("--ref-fred", required=True, help=f"checkout of {FRED}")
    add_commit_arg(ap, FRED, "--commit-fred")
    ap.add_argument("--ref-ddif", required=True, help=f"checkout of {DDIF}")
    add_commit_arg(ap, DDIF, "--commit-ddif")
    args = ap.parse_args()
    add_reference_path(args.ref)  # records the repository; kornia is the authors' dependency
    import kornia as K
    import torch

    calls = []
    for repo, ref, commit in ((MTT, args.ref, args.commit),
                              (FRED, args.ref_fred, args.commit_fred),
                              (DDIF, args.ref_ddif, args.commit_ddif)):
        commit = checked_commit(ref, commit)
        found = zca_calls(ref)
        if not found:
            raise SystemExit(f"no ZCAWhitening(eps=...) call under {ref} ({repo})")
        calls += [dict(repository=repo, commit=commit, path=p, line=ln, eps=e)
                  for p, ln, e in found]
    eps_all = sorted({c["eps"] for c in calls})
    if len(eps_all) != 1:
        raise SystemExit(f"the authors' ZCA eps differ between calls: {calls}")
    eps = eps_all[0]
    # the call get_dataset makes (mtt-distillation utils.py:147, used by buffer.py/distill.py)
    assert any(c["repository"] == MTT and c["path"] == "utils.py" for c in calls), calls
    for c in calls:
        print(f"{c['repository']}@{c['commit'][:7]} {c['path']}:{c['line']} eps={c['eps']}")

    rng = np.random.default_rng(20261201)
    out = {}
    for case, (n_tr, n_te) in {"a": (64, 16), "b": (20, 8)}.items():
        tr_u8, te_u8 = _images(rng, n_tr), _images(rng, n_te)
        # ToTensor(): uint8 -> float32 / 255 (utils.py:59); stacked (utils.py:141-145)
        tr = torch.from_numpy(tr_u8).float().div(255)
        te = torch.from_numpy(te_u8).float().div(255)
        zca = K.enhance.ZCAWhitening(eps=eps, compute_inv=True)  # utils.py:147
        zca.fit(tr)                                               # utils.py:148
        ztr = zca(tr).detach().float()                            # utils.py:149, 177
        zte = zca(te).detach().float()                            # utils.py:162
        inv = zca.inverse_transform(ztr).detach().float()
        out.update({
            f"{case}_train_u8": tr_u8, f"{case}_test_u8": te_u8,
            f"{case}_train_zca": ztr.numpy(), f"{case}_test_zca": zte.numpy(),
            f"{case}_train_inverse": inv.numpy(),
            f"{case}_mean": zca.mean_vector.numpy().reshape(-1),
            f"{case}_T": zca.transform_matrix.numpy(),
            f"{case}_T_inv": zca.transform_inv.numpy(),
        })
    out["authors_eps"] = np.float64(eps)
    out["zca_calls"] = np.array(json.dumps(calls))
    save_fixture("zca", repo=f"{MTT} (+ kornia {K.__version__})", ref=args.ref,
                 commit=args.commit, script=__file__, **out)


if __name__ == "__main__":
    main()
