"""Make tests/parity/fixtures/modal_ddif.npz from the authors' DDiF code for 3-D grids.

    python tests/parity/make_modal_ddif.py --ref=<checkout of aailab-kaist/DDiF>

Runs the authors' ``3D_Voxel/DDiF.py`` and ``Video/DDiF.py`` (class DDiF, Siren,
to_coordinates_and_features; each loaded from its own file) on tiny deterministic inputs:

* ``vox_*``: a DDiF voxel set, 2 classes of 1 x 6 x 6 x 6 voxels (their (C, D, H, W)),
  ipc 1, DIM_IN 3, dim_out 1, 3 sine layers, width 4, w0 40, w0_initial 30 (the published
  voxel field, 3D_Voxel/hyper_params.py, narrower) -> b = 61, int(1*1*216/61) = 3 fields
  per class. Built by their ``DDiF.__init__`` and ``DDiF.init`` (warm-up: per-field
  Adam(lr_nf_init) MSE fit, 8 steps at their default lr_nf_init 5e-4). Stored: the fields
  before and after the warm-up, the warm-up targets (their to_coordinates_and_features
  input, (C, D, H, W)), the coordinates, budget and labels, and ``DDiF.get`` (K, 1, D, H, W).
* ``vid_*``: a DDiF video set, 2 classes of 4-frame 3 x 5 x 5 clips (their (T, C, H, W)),
  ipc 1, dipc 2 (the video code takes the count as given), DIM_IN 3, dim_out 3, 2 sine
  layers, width 5, w0 = w0_initial = 5 (Video/hyper_params.py's frequencies). One warm-up
  step (their loop needs >= 1); then every weight is scaled by 3 so the sines are far from
  linear. Stored: the fields, the coordinates and ``DDiF.get`` (K, T, 3, H, W); and, for
  one clip, their warm-up features ``to_coordinates_and_features(clip)[1]`` (P, 3), which
  the test compares with the clip in decode layout (a documented difference).

The authors' modules import ``torchvision.utils.save_image`` (image dumps) and
``utils.get_time / save_and_print`` (logging); both are stubbed (no-ops), nothing numerical
is replaced. Weights are stored in torch layout (out, in), stacked over fields:
``<prefix>_w<l>`` (K, out, in), ``<prefix>_b<l>`` (K, out).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity.common import add_commit_arg, save_fixture  # noqa: E402

REPO = "aailab-kaist/DDiF"


def _stub_modules():
    tv = types.ModuleType("torchvision")
    tvu = types.ModuleType("torchvision.utils")
    tvu.save_image = lambda *a, **k: None
    tv.utils = tvu
    sys.modules["torchvision"] = tv
    sys.modules["torchvision.utils"] = tvu
    ut = types.ModuleType("utils")
    ut.get_time = lambda: "t"
    ut.save_and_print = lambda *a, **k: None
    sys.modules["utils"] = ut


def _load(path, name):
    if not os.path.exists(path):
        raise SystemExit(f"authors' code not found at {path}: pass --ref=<checkout of {REPO}>")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _layers(siren):
    return [m.linear for m in siren.net] + [siren.last_layer.linear]


def pack(prefix, fields):
    out = {}
    per = [_layers(f) for f in fields]
    for l in range(len(per[0])):
        out[f"{prefix}_w{l}"] = np.stack([p[l].weight.detach().numpy() for p in per])
        out[f"{prefix}_b{l}"] = np.stack([p[l].bias.detach().numpy() for p in per])
    return out


def _run_init(M, synset, real, labels, indices_class, work, prefix):
    """DDiF.init, recording the fields before the warm-up and the warm-up targets."""
    seen = {}
    real_tqdm, real_tcf = M.tqdm, M.to_coordinates_and_features

    def tqdm_hook(it):
        seen["pre"] = pack(f"{prefix}_pre", list(synset.nf_syn))
        return it

    def tcf_hook(x):
        seen.setdefault("targets", []).append(x.detach().clone())
        return real_tcf(x)

    M.tqdm, M.to_coordinates_and_features = tqdm_hook, tcf_hook
    cwd = os.getcwd()
    os.chdir(os.path.join(work, "run"))  # their cache path is relative: ../initialized_synset
    try:
        synset.init(real, labels, indices_class)
    finally:
        os.chdir(cwd)
        M.tqdm, M.to_coordinates_and_features = real_tqdm, real_tcf
    return seen


def _args(work, **kw):
    os.makedirs(os.path.join(work, "run", "imgs"), exist_ok=True)
    base = dict(log_path=os.path.join(work, "log.txt"), save_path=os.path.join(work, "run"),
                device="cpu", ipc=1, dataset="toy", res=0, model="toy", lr_nf=1e-2,
                lr_nf_init=1e-2)
    base.update(kw)
    return types.SimpleNamespace(**base)


def voxels(M, torch):
    C, D, ncls = 1, 6, 2
    torch.manual_seed(0)
    np.random.seed(0)
    real = (torch.rand(ncls * 4, C, D, D, D) * 2 - 1).float()
    labels = torch.arange(ncls).repeat_interleave(4)
    indices_class = [list(range(c * 4, (c + 1) * 4)) for c in range(ncls)]
    args = _args(tempfile.mkdtemp(), channel=C, num_classes=ncls, im_size=(D, D, D),
                 dim_in=3, num_layers=3, layer_size=4, dim_out=1, w0_initial=30.0, w0=40.0,
                 epochs_init=8, dipc=0, lr_nf_init=5e-4)
    synset = M.DDiF(args)
    seen = _run_init(M, synset, real, labels, indices_class,
                     os.path.dirname(args.save_path), "vox")
    K = len(synset.nf_syn)
    assert K == ncls * synset.num_per_class == 6, K
    out = dict(seen["pre"])
    # the first call builds the coordinate grid from a random tensor; the K next: targets
    out["vox_warm_targets"] = torch.stack(seen["targets"][1:1 + K]).numpy()  # (K,C,D,H,W)
    out.update(pack("vox_warm", list(synset.nf_syn)))
    out["vox_coord"] = synset.coord.numpy()
    out["vox_budget"] = np.array([synset.budget_per_instance, synset.num_per_class])
    out["vox_labels"] = synset.label_syn.numpy()
    out["vox_hparams"] = np.array([3, 4, 1, 40.0, 30.0, args.epochs_init,
                                   args.lr_nf_init], np.float64)  # L, width, out, w0, w0i, ...
    with torch.no_grad():
        out["vox_decoded"] = synset.get(need_copy=True)[0].numpy()        # (K, 1, D, H, W)
    return out


def video(M, torch):
    T, C, S, ncls = 4, 3, 5, 2
    torch.manual_seed(1)
    np.random.seed(1)
    real = (torch.rand(ncls * 3, T, C, S, S) * 2 - 1).float()
    labels = torch.arange(ncls).repeat_interleave(3)
    indices_class = [list(range(c * 3, (c + 1) * 3)) for c in range(ncls)]
    args = _args(tempfile.mkdtemp(), channel=C, num_classes=ncls, frames=T, im_size=(S, S),
                 dim_in=3, num_layers=2, layer_size=5, dim_out=3, w0_initial=5.0, w0=5.0,
                 epochs_init=1, dipc=2, mean=[0.0] * 3, std=[1.0] * 3)
    synset = M.DDiF(args)
    _run_init(M, synset, real, labels, indices_class, os.path.dirname(args.save_path), "vid")
    K = len(synset.nf_syn)
    assert K == 4, K
    with torch.no_grad():
        for f in synset.nf_syn:   # spread the weights so the sines are far from linear
            for l in _layers(f):
                l.weight.mul_(3.0)
                l.bias.mul_(3.0)
    out = pack("vid", list(synset.nf_syn))
    out["vid_coord"] = synset.coord.numpy()
    out["vid_hparams"] = np.array([2, 5, 3, 5.0, 5.0], np.float64)
    out["vid_labels"] = synset.label_syn.numpy()
    with torch.no_grad():
        out["vid_decoded"] = synset.get(need_copy=True)[0].numpy()        # (K, T, 3, H, W)
    clip = real[0]
    out["vid_clip"] = clip.numpy()                                        # (T, C, H, W)
    out["vid_clip_features"] = M.to_coordinates_and_features(clip)[1].numpy()  # (P, C)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="checkout of aailab-kaist/DDiF")
    add_commit_arg(ap, REPO)
    a = ap.parse_args()
    ref = os.path.abspath(a.ref)
    _stub_modules()
    import torch

    torch.set_default_dtype(torch.float32)
    arrays = {}
    arrays.update(voxels(_load(os.path.join(ref, "3D_Voxel", "DDiF.py"), "ddif_voxel"), torch))
    arrays.update(video(_load(os.path.join(ref, "Video", "DDiF.py"), "ddif_video"), torch))
    save_fixture("modal_ddif", repo=REPO, ref=ref, commit=a.commit, script=__file__, **arrays)


if __name__ == "__main__":
    main()
