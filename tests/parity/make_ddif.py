"""Make tests/parity/fixtures/ddif.npz from the authors' DDiF code (aailab-kaist/DDiF).

    python tests/parity/make_ddif.py --ref=<checkout of aailab-kaist/DDiF>

Runs the authors' ``SynSet/DDiF.py`` (class DDiF, Siren, to_coordinates_and_features) on
tiny deterministic inputs and stores inputs and outputs:

* ``rgb_*``: a DDiF synthetic set for 2 classes of 8x8x3 images, SIREN width 6, 2 sine
  layers, w0 10, w0_initial 30 (the CIFAR-10 IPC 1 field) -> budget 81 floats per field,
  int(1 * 3 * 8 * 8 / 81) = 2 fields per class. Built by the authors' ``DDiF.__init__`` and
  ``DDiF.init`` (warm-up: per-field Adam(lr_nf_init) MSE fit, 10 steps at lr 1e-2), then 5
  distillation steps with their optimizer (``DDiF.optimizer`` = one torch.optim.Adam over
  the ModuleList, lr_nf 1e-2) where each step decodes only a SUBSET of the fields with
  ``DDiF.get(indices)`` (as main_TM.py:285 does), loss = mean squared error to fixed
  targets, ``optim_zero_grad`` / backward / ``optim_step``. Stored: the fields before and
  after warm-up, the warm-up targets, the fields after every step, Adam's final per-field
  state (step count, exp_avg, exp_avg_sq), the coordinates, the decoded images at 8x8
  (``DDiF.get``), at 16x16 and on a non-square 4x8 grid (their coordinate function on an
  image of that shape).
* ``gray_*``: 3 fields with 1 output channel, width 5, 3 sine layers, w0 40 decoded on the
  8x8 grid (their ``get`` hard-codes 3 channels, SynSet/DDiF.py:150, so the field is
  called directly and reshaped the same way with C = 1).
* ``bound_*``: the largest |weight| / |bias| per layer over 400 freshly initialized Sirens
  (dim_in 2, width 6, 3 sine layers, w0 10, w0_initial 30, 3 outputs): an empirical check
  of the init bounds (jaxdd does not reproduce torch's RNG).

The authors' module imports ``torchvision.utils.save_image`` (image dumps) and
``utils.get_time / save_and_print`` (logging) from their TM/DM/DC folders; both are stubbed
here (no-ops), nothing numerical is replaced. Weights are stored in torch layout
(out, in), stacked over fields: ``<prefix>_w<l>`` (K, out, in), ``<prefix>_b<l>`` (K, out),
layer l = 0 .. num_layers (the last is the linear output layer).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity.common import add_commit_arg, add_reference_path, save_fixture  # noqa: E402

REPO = "aailab-kaist/DDiF"


def _stub_modules():
    tv = types.ModuleType("torchvision")
    tvu = types.ModuleType("torchvision.utils")
    tvu.save_image = lambda *a, **k: None
    tv.utils = tvu
    sys.modules.setdefault("torchvision", tv)
    sys.modules.setdefault("torchvision.utils", tvu)
    ut = types.ModuleType("utils")
    ut.get_time = lambda: "t"
    ut.save_and_print = lambda *a, **k: None
    sys.modules["utils"] = ut


def _layers(siren):
    return [m.linear for m in siren.net] + [siren.last_layer.linear]


def pack(prefix, fields):
    """Stack the per-field torch weights as <prefix>_w<l> (K, out, in), <prefix>_b<l>."""
    out = {}
    per = [_layers(f) for f in fields]
    for l in range(len(per[0])):
        out[f"{prefix}_w{l}"] = np.stack([p[l].weight.detach().numpy() for p in per])
        out[f"{prefix}_b{l}"] = np.stack([p[l].bias.detach().numpy() for p in per])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="checkout of aailab-kaist/DDiF")
    add_commit_arg(ap, REPO)
    a = ap.parse_args()
    ref = os.path.abspath(a.ref)
    add_reference_path(ref)
    _stub_modules()
    import torch
    import SynSet  # noqa: F401  the authors' package (SynSet/__init__.py re-exports DDiF)
    M = sys.modules["SynSet.DDiF"]  # the module (the package attribute is the class)

    torch.set_default_dtype(torch.float32)
    arrays = {}

    # ---------------------------------------------------------------- rgb synthetic set
    C, H, W, ncls = 3, 8, 8, 2
    torch.manual_seed(0)
    np.random.seed(0)
    images_real = (torch.rand(ncls * 5, C, H, W) * 2 - 1).float()
    labels_real = torch.arange(ncls).repeat_interleave(5)
    indices_class = [list(range(c * 5, (c + 1) * 5)) for c in range(ncls)]
    work = tempfile.mkdtemp()
    os.makedirs(os.path.join(work, "run", "imgs"))
    args = types.SimpleNamespace(
        log_path=os.path.join(work, "log.txt"), save_path=os.path.join(work, "run"),
        channel=C, num_classes=ncls, im_size=(H, W), device="cpu", ipc=1,
        dim_in=2, num_layers=2, layer_size=6, dim_out=3, w0_initial=30.0, w0=10.0,
        lr_nf=1e-2, epochs_init=10, lr_nf_init=1e-2, dipc=0,
        dataset="toy", subset="none", res=H, model="ConvNet",
        mean=[0.0] * C, std=[1.0] * C)
    synset = M.DDiF(args)

    # record the fields before warm-up and the warm-up targets without changing anything:
    # DDiF.init calls tqdm(range(K)) right before the per-field fits and
    # to_coordinates_and_features(image) for every fitted image (SynSet/DDiF.py:97-102).
    seen = {}
    real_tqdm, real_tcf = M.tqdm, M.to_coordinates_and_features

    def tqdm_hook(it):
        seen["pre"] = pack("rgb_pre", list(synset.nf_syn))
        return it

    def tcf_hook(img):
        seen.setdefault("imgs", []).append(img.detach().clone())
        return real_tcf(img)

    M.tqdm, M.to_coordinates_and_features = tqdm_hook, tcf_hook
    cwd = os.getcwd()
    os.chdir(os.path.join(work, "run"))  # their cache path is relative: ../initialized_synset
    try:
        synset.init(images_real, labels_real, indices_class)
    finally:
        os.chdir(cwd)
        M.tqdm, M.to_coordinates_and_features = real_tqdm, real_tcf
    K = len(synset.nf_syn)
    assert K == ncls * synset.num_per_class == 4, K
    arrays.update(seen["pre"])
    # first call builds the coordinate grid from a random image; the K next are the targets
    arrays["rgb_warm_targets"] = torch.stack(seen["imgs"][1:1 + K]).numpy()  # (K, C, H, W)
    arrays.update(pack("rgb_warm", list(synset.nf_syn)))
    arrays["rgb_coord"] = synset.coord.numpy()
    arrays["rgb_budget"] = np.array([synset.budget_per_instance, synset.num_per_class])
    arrays["rgb_labels"] = synset.label_syn.numpy()
    arrays["rgb_hparams"] = np.array([args.lr_nf, args.epochs_init, args.lr_nf_init,
                                      args.w0, args.w0_initial], np.float64)

    # masked distillation steps with the authors' optimizer
    subsets = [[0, 1, 2, 3], [1, 3], [0, 1], [2], [3, 1, 0]]
    g = torch.Generator().manual_seed(1)
    targets = 0.5 * torch.randn(K, C, H, W, generator=g)
    arrays["rgb_targets"] = targets.numpy()
    arrays["rgb_subsets"] = np.array([[i in s for i in range(K)] for s in subsets])
    arrays["rgb_subset_order"] = np.array([s + [-1] * (K - len(s)) for s in subsets])
    losses = []
    for s, idx in enumerate(subsets):
        images, _ = synset.get(indices=idx)
        loss = torch.nn.functional.mse_loss(images, targets[idx])
        synset.optim_zero_grad()
        loss.backward()
        synset.optim_step()
        losses.append(loss.item())
        arrays.update(pack(f"rgb_step{s}", list(synset.nf_syn)))
    arrays["rgb_losses"] = np.array(losses, np.float32)
    opt = synset.optimizer
    steps, mu, nu = [], [], []
    for f in synset.nf_syn:
        ps = [p for l in _layers(f) for p in (l.weight, l.bias)]
        st = [opt.state[p] for p in ps]
        assert len({float(x["step"]) for x in st}) == 1  # one count per field
        steps.append(float(st[0]["step"]))
        mu.append(np.concatenate([x["exp_avg"].numpy().reshape(-1) for x in st]))
        nu.append(np.concatenate([x["exp_avg_sq"].numpy().reshape(-1) for x in st]))
    arrays["rgb_adam_step"] = np.array(steps)
    arrays["rgb_adam_mu"] = np.stack(mu)   # (K, b): per field, layers in order, (w, b), torch layout
    arrays["rgb_adam_nu"] = np.stack(nu)

    with torch.no_grad():
        imgs, labs = synset.get(need_copy=True)
        arrays["rgb_images"] = imgs.numpy()                       # (K, C, H, W)
        for name, shape in (("16", (16, 16)), ("ns", (4, 8))):
            coord, _ = M.to_coordinates_and_features(torch.rand(C, *shape))
            # SynSet/DDiF.py:150 with the grid of another image shape
            out = torch.stack([f(coord).reshape(shape[0], shape[1], 3).permute(2, 0, 1)
                               for f in synset.nf_syn])
            arrays[f"rgb_coord_{name}"] = coord.numpy()
            arrays[f"rgb_images_{name}"] = out.numpy()

    # ---------------------------------------------------------------- grayscale fields
    torch.manual_seed(2)
    gray = [M.Siren(dim_in=2, dim_hidden=5, dim_out=1, num_layers=3,
                    final_activation=torch.nn.Identity(), w0_initial=30.0, w0=40.0)
            for _ in range(3)]
    with torch.no_grad():
        for f in gray:  # spread the weights so the sines are far from linear
            for l in _layers(f):
                l.weight.mul_(1.5)
    arrays.update(pack("gray", gray))
    coord, _ = M.to_coordinates_and_features(torch.rand(1, H, W))
    with torch.no_grad():
        arrays["gray_images"] = torch.stack(
            [f(coord).reshape(H, W, 1).permute(2, 0, 1) for f in gray]).numpy()
    arrays["gray_hparams"] = np.array([40.0, 30.0])

    # ---------------------------------------------------------------- init bounds
    torch.manual_seed(3)
    nets = [M.Siren(dim_in=2, dim_hidden=6, dim_out=3, num_layers=3,
                    final_activation=torch.nn.Identity(), w0_initial=30.0, w0=10.0)
            for _ in range(400)]
    wmax = [max(float(_layers(n)[l].weight.abs().max()) for n in nets) for l in range(4)]
    bmax = [max(float(_layers(n)[l].bias.abs().max()) for n in nets) for l in range(4)]
    arrays["bound_w"] = np.array(wmax)
    arrays["bound_b"] = np.array(bmax)
    arrays["bound_hparams"] = np.array([2, 6, 3, 3, 10.0, 30.0])  # dim_in, width, L, out, w0, w0i

    save_fixture("ddif", repo=REPO, ref=ref, commit=a.commit, script=__file__, **arrays)


if __name__ == "__main__":
    main()
