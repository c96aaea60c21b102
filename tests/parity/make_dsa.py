"""Parity fixture for DSA (jaxdd.augment) from the authors' PyTorch code.

    python tests/parity/make_dsa.py --ref=<checkout of GeorgeCazenavette/mtt-distillation> \
        --ref-dm=<checkout of aailab-kaist/DDiF>

Runs the authors' DSA ops (MTT utils.py: rand_brightness ... rand_rotate, DiffAugment,
ParamDiffAug, at GeorgeCazenavette/mtt-distillation@50dccea) on tiny seeded NCHW batches while
recording every random tensor they draw (torch.rand / torch.randint / torch.randn are wrapped
during the call, so the draws are captured in order, exactly as the op used them), and stores
input, draws, output and the input gradient of sum(out * w) for a stored weight w.

Cases (keys in the .npz; <case> is one of the names below):
  op_<fn>_<shape>   one authors' op (e.g. op_rand_scale_c3) on the batch of that shape;
  M_<i>, S_<i>      the full DiffAugment(x, 'color_crop_cutout_flip_scale_rotate') in aug_mode
                    'M' / 'S' (per-sample parameters, MTT's call: no seed); in 'S' one call per
                    op group (torch seeds taken in order until each group was chosen);
  siam<M|S>_<i>_<real|syn>  DDiF DM/utils.py DiffAugment(x, strategy, seed=s) on a real batch
                    (6 images) and a synthetic batch (2 images) with the same s: DC/DM's
                    siamese call, every image of both batches shares one parameter set
                    (mode 'M' once, mode 'S' for two different chosen groups);
  dm_<fn>_<shape>   rand_scale / rand_rotate of DDiF DM/utils.py (aailab-kaist/DDiF@b628e7b),
                    which calls F.affine_grid / F.grid_sample without align_corners, i.e.
                    torch's default align_corners=False.
For each case: <case>__x (input), <case>__draw<k> (k-th random tensor), <case>__drawfn<k>
(the torch function name), <case>__out, <case>__w, <case>__grad (d sum(out*w) / dx), and for
DiffAugment cases the strategy/mode in the meta of the case (<case>__info, a JSON string).

The authors' modules import torchvision (not installed here and unused by DSA): a stub module
stands in. Nothing in the authors' files is modified.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity.common import (add_commit_arg, add_reference_path, checked_commit,  # noqa: E402
                           save_fixture,
                           stub_torchvision)

STRATEGY = "color_crop_cutout_flip_scale_rotate"


def _load_utils(code_dir: str, name: str):
    """Import <code_dir>/utils.py as module `name` (with its own networks.py on the path)."""
    sys.modules.pop("networks", None)
    sys.path.insert(0, code_dir)
    try:
        spec = importlib.util.spec_from_file_location(name, os.path.join(code_dir, "utils.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(code_dir)
    return mod


class Recorder:
    """Wraps torch.rand / randint / randn while active; records (fn name, tensor) in order."""

    NAMES = ("rand", "randint", "randn")

    def __init__(self, torch):
        self.torch = torch
        self.draws: list[tuple[str, np.ndarray, tuple]] = []
        self._orig = {}

    def __enter__(self):
        for nm in self.NAMES:
            orig = getattr(self.torch, nm)
            self._orig[nm] = orig

            def wrapped(*a, _orig=orig, _nm=nm, **k):
                t = _orig(*a, **k)
                # randint(low, high, size): keep (low, high), the authors' integer bounds
                bounds = tuple(int(v) for v in a[:2]) if _nm == "randint" else ()
                self.draws.append((_nm, t.detach().cpu().numpy().copy(), bounds))
                return t

            setattr(self.torch, nm, wrapped)
        return self

    def __exit__(self, *exc):
        for nm, orig in self._orig.items():
            setattr(self.torch, nm, orig)
        return False


def run_case(torch, arrays: dict, case: str, fn, xkey: str, seed: int,
             info: dict | None = None, grad: bool = True):
    """out = fn(x) under torch.manual_seed(seed) with the draws recorded; x = arrays['x_'+xkey].

    grad: also store d sum(out * w) / dx with w = arrays['w_' + xkey].
    """
    x = torch.tensor(arrays["x_" + xkey], requires_grad=grad)
    torch.manual_seed(seed)
    with Recorder(torch) as rec:
        out = fn(x)
    arrays[f"{case}__out"] = out.detach().numpy().astype(np.float32)
    if grad:
        (out * torch.tensor(arrays["w_" + xkey])).sum().backward()
        arrays[f"{case}__grad"] = x.grad.numpy().astype(np.float32)
    for k, (nm, t, bounds) in enumerate(rec.draws):
        arrays[f"{case}__draw{k}"] = t
    arrays[f"{case}__info"] = np.array(json.dumps(dict(
        info or {}, x=xkey, seed=seed, grad=grad, fns=[d[0] for d in rec.draws],
        bounds=[list(d[2]) for d in rec.draws])))
    return rec.draws


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", required=True, help="checkout of GeorgeCazenavette/mtt-distillation")
    ap.add_argument("--ref-dm", required=True,
                    help="checkout of aailab-kaist/DDiF (its DM/utils.py: align_corners default)")
    add_commit_arg(ap, "GeorgeCazenavette/mtt-distillation")
    add_commit_arg(ap, "aailab-kaist/DDiF", "--commit-dm")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    stub_torchvision()
    add_reference_path(args.ref)
    U = _load_utils(os.path.abspath(args.ref), "mtt_utils")

    rng = np.random.default_rng(0)
    arrays: dict = {}
    # NCHW inputs, multiples of 1/8 in [-2, 2] (exact in float32; the fixture compresses):
    # 8x8 RGB and gray (4 images); a non-square 12x10 batch (6 images, 2 channels) for the
    # geometric ops (crop shift 2 on H / 1 on W, cutout 6 x 5: H and W must not be swapped);
    # the siamese real (4) and synthetic (2) batches.
    shapes = {"c3": (4, 3, 8, 8), "c1": (4, 1, 8, 8), "rect": (6, 2, 12, 10),
              "real": (4, 3, 8, 8), "syn": (2, 3, 8, 8)}
    for k, shp in shapes.items():
        arrays["x_" + k] = (rng.integers(-16, 17, size=shp) / 8).astype(np.float32)
        arrays["w_" + k] = (rng.integers(-8, 9, size=shp) / 4).astype(np.float32)

    def per_sample(param):
        param.batchmode = False  # what DiffAugment(x, seed=-1) sets (MTT utils.py:522-523)
        param.Siamese = False    # the DM/DC utils' name for it
        param.latestseed = -1    # no reseeding: per-sample parameters from the global stream
        return param

    seed = 1000
    ops = ["rand_brightness", "rand_saturation", "rand_contrast", "rand_crop", "rand_cutout",
           "rand_flip", "rand_scale", "rand_rotate"]
    # colour ops on RGB and gray; geometric ops on RGB and the non-square batch. The input
    # gradient is stored for every case except the square affine ones (bilinear sampling is
    # linear in x: its gradient is checked once per op and convention, on 'rect').
    for op in ops:
        for sk in ("c3", "c1") if op in ops[:3] else ("c3", "rect"):
            seed += 1
            run_case(torch, arrays, f"op_{op}_{sk}",
                     lambda x, f=getattr(U, op), p=per_sample(U.ParamDiffAug()): f(x, p),
                     sk, seed, dict(op=op),
                     grad=not (op in ("rand_scale", "rand_rotate") and sk != "rect"))

    # The integer bounds the authors draw from (torch.randint(low, high)) for many image
    # sizes: crop int(side * 0.125 + 0.5), cutout int(side * 0.5 + 0.5); for cutout also the
    # mask it cut from an image of ones and the offsets it drew.
    sizes = [(h, w) for h in (1, 2, 3, 4, 5, 7, 8, 11, 12, 20, 28, 32, 64, 128)
             for w in (h, 10)]
    for h, w in sizes:
        for op in ("rand_crop", "rand_cutout"):
            with Recorder(torch) as rec:
                out = getattr(U, op)(torch.ones(1, 1, h, w), per_sample(U.ParamDiffAug()))
            arrays[f"bounds_{op}_{h}x{w}"] = np.array([b for d in rec.draws for b in d[2]])
            if op == "rand_cutout":  # the mask and the offsets it was drawn at
                arrays[f"cutmask_{h}x{w}"] = out[0, 0].numpy() > 0.5
                arrays[f"cutoff_{h}x{w}"] = np.array([int(d[1].reshape(-1)[0])
                                                       for d in rec.draws])

    # full DiffAugment, MTT's call (no seed -> per-sample parameters). Mode 'S': torch seeds
    # are taken in order until every op group has been chosen once (the first draw of a call
    # is the op choice).
    for i in range(2):
        param = U.ParamDiffAug()
        param.aug_mode = "M"
        run_case(torch, arrays, f"M_{i}",
                 lambda x, p=param: U.DiffAugment(x, STRATEGY, seed=-1, param=p),
                 "c3", 2000 + i, dict(strategy=STRATEGY, mode="M"), grad=False)
    n_groups = len(STRATEGY.split("_"))
    chosen, s, i = set(), 3000, 0
    while len(chosen) < n_groups:
        s += 1
        param = U.ParamDiffAug()
        param.aug_mode = "S"
        case = f"S_{i}"
        draws = run_case(torch, arrays, case,
                         lambda x, p=param: U.DiffAugment(x, STRATEGY, seed=-1, param=p),
                         "c3", s, dict(strategy=STRATEGY, mode="S"), grad=False)
        op = int(draws[0][1].reshape(-1)[0])
        if op in chosen:  # keep one call per group
            for k in [k for k in arrays if k.startswith(case + "__")]:
                del arrays[k]
            continue
        chosen.add(op)
        i += 1

    # siamese (DC/DM; DDiF DM/utils.py, align_corners default): DiffAugment(x, seed=s) on a
    # real batch of 4 and a synthetic batch of 2 with the same s, as main_DM.py:189-190 does;
    # every image of both batches shares one parameter set. Mode 'M' once, mode 'S' once per
    # op group.
    D = _load_utils(os.path.join(os.path.abspath(args.ref_dm), "DM"), "ddif_dm_utils")

    def siamese(case, mode, dsa_seed):
        out = []
        for tag in ("real", "syn"):
            param = D.ParamDiffAug()
            param.aug_mode = mode
            out.append(run_case(
                torch, arrays, f"{case}_{tag}",
                lambda x, p=param: D.DiffAugment(x, STRATEGY, seed=dsa_seed, param=p),
                tag, 0, dict(strategy=STRATEGY, mode=mode, dsa_seed=dsa_seed), grad=False))
        return out

    siamese("siamM_0", "M", 31)
    chosen, s, i = set(), 0, 0
    while len(chosen) < 2:  # the seeded op choice, twice (mode 'M' covers every group)
        s += 1
        draws = siamese(f"siamS_{i}", "S", s)
        op = int(draws[0][0][1].reshape(-1)[0])
        if op in chosen:
            for k in [k for k in arrays if k.startswith(f"siamS_{i}_")]:
                del arrays[k]
            continue
        chosen.add(op)
        i += 1

    # DM/DC affine ops: align_corners left at torch's default (False)
    for op in ("rand_scale", "rand_rotate"):
        for sk in ("c3", "rect"):
            seed += 1
            run_case(torch, arrays, f"dm_{op}_{sk}",
                     lambda x, f=getattr(D, op), p=per_sample(D.ParamDiffAug()): f(x, p),
                     sk, seed, dict(op=op), grad=sk == "rect")
    meta_dm = f"aailab-kaist/DDiF@{checked_commit(args.ref_dm, args.commit_dm)} DM/utils.py"

    arrays["dm_source"] = np.array(meta_dm)
    save_fixture("dsa", repo="GeorgeCazenavette/mtt-distillation", ref=args.ref,
                 commit=args.commit,
                 script=__file__, **arrays)


if __name__ == "__main__":
    main()
