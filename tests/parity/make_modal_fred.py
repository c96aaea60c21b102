"""Make tests/parity/fixtures/modal_fred.npz from the authors' 3-D FreD code (3D MNIST).

    python tests/parity/make_modal_fred.py --ref=<checkout of sdh0818/FreD>

Runs sdh0818/FreD's own classes from 3D-MNIST/ (frequency_transforms.py: DCT, the 3-D
DCT-II over (D, H, W); main_DM_FreD.py: SynSet with its num_per_class, init, EVR init_mask,
get) on tiny deterministic voxel sets and writes tests/parity/fixtures/modal_fred.npz.
Needs torch (CPU). main_DM_FreD.py imports its utils.py (h5py, torchvision, scipy: data
loading and evaluation, never reached by SynSet); that module is replaced by no-op stand-ins
for the names main_DM_FreD imports. Nothing numerical is replaced; the authors' files are
never edited.

Cases (uint8 voxels -> float32 (u8 / 255 - 0.5) / 0.25, computed identically by the test):
  vox6    1 x 6 x 6 x 6, 2 classes x 8 voxel grids, ipc 1, k 54 -> 4 instances per class
  vox4c2  2 x 4 x 4 x 4, 2 classes x 6 voxel grids, ipc 1, k 16 -> 4 instances per class
          (two channels: the mask is built from the channel mean and shared by both)
Stored per case (prefix <case>_): u8 (classes, n, C, D, H, W); sel (classes, npc) the
grids SynSet.init selected (np.random.permutation, recorded); dct_all: DCT.forward of every
input; idct_all: DCT.inverse of dct_all; freq0: SynSet.freq_syn after init; mask:
SynSet.mask (N, C, D, H, W); decode0: SynSet.get() after init; G, lr, mom, freq2, decode2:
two steps of SynSet's own optimizer (SGD lr_freq, momentum mom_freq) on
loss = sum(G * tanh(decoded)).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

CASES = {
    "vox6": dict(channels=1, side=6, per_class=8, ipc=1, k=54, lr=50.0, seed=1),
    "vox4c2": dict(channels=2, side=4, per_class=6, ipc=1, k=16, lr=20.0, seed=2),
}
NUM_CLASSES = 2
MOM = 0.5


def stub_utils():
    """main_DM_FreD.py's `from utils import ...`: no-op stand-ins (data loading, evaluation,
    logging; SynSet calls only save_and_print, for its log)."""
    ut = types.ModuleType("utils")
    for name in ("get_loops", "get_dataset", "get_network", "evaluate_synset", "get_time",
                 "TensorDataset", "epoch", "set_seed", "get_images"):
        setattr(ut, name, lambda *a, **k: None)
    ut.save_and_print = lambda *a, **k: None
    sys.modules["utils"] = ut


def to_float(u8):
    return ((u8.astype(np.float32) / np.float32(255.0) - np.float32(0.5))
            / np.float32(0.25)).astype(np.float32)


def run_case(mod, name, spec, tmp):
    import torch
    rng = np.random.default_rng(spec["seed"])
    ch, side, n = spec["channels"], spec["side"], spec["per_class"]
    # smooth-ish voxels (low-frequency structure + noise), as uint8
    lo = rng.uniform(0, 255, size=(NUM_CLASSES, n, ch, 2, 2, 2))
    t = (np.arange(side) + 0.5) / side
    basis = np.stack([np.ones(side), np.cos(np.pi * t)])  # (2, side)
    vox = np.einsum("kncuvw,ud,vh,wx->kncdhx", lo - 127.5, basis, basis, basis) * 0.5 + 127.5
    vox = vox + rng.normal(0, 25, size=vox.shape)
    u8 = np.clip(np.rint(vox), 0, 255).astype(np.uint8)

    x = torch.from_numpy(to_float(u8).reshape(NUM_CLASSES * n, ch, side, side, side))
    labels = torch.arange(NUM_CLASSES).repeat_interleave(n)
    indices_class = [list(range(c * n, (c + 1) * n)) for c in range(NUM_CLASSES)]
    args = argparse.Namespace(
        log_path=os.path.join(tmp, f"{name}.log"), channel=ch, num_classes=NUM_CLASSES,
        im_size=(side, side, side), device="cpu", ipc=spec["ipc"], lr_freq=spec["lr"],
        mom_freq=MOM, msz_per_channel=spec["k"])
    synset = mod.SynSet(args)
    npc = synset.num_per_class

    recorded = []
    orig_perm = np.random.permutation

    def rec_perm(a, *aa, **kk):
        out = orig_perm(a, *aa, **kk)
        recorded.append(np.asarray(out))
        return out

    np.random.seed(spec["seed"])
    torch.manual_seed(spec["seed"])
    np.random.permutation = rec_perm
    try:
        synset.init(x, labels, indices_class)
    finally:
        np.random.permutation = orig_perm
    assert len(recorded) == NUM_CLASSES
    sel = np.stack([r[:npc] - c * n for c, r in enumerate(recorded)]).astype(np.int32)

    with torch.no_grad():
        dct_all = synset.dct.forward(x)
        idct_all = synset.dct.inverse(dct_all).numpy()
    freq0 = synset.freq_syn.detach().numpy().copy()
    mask = synset.mask.detach().numpy().copy()
    decode0 = synset.get(need_copy=True)[0].detach().numpy()

    G = rng.normal(size=decode0.shape).astype(np.float32)
    Gt = torch.from_numpy(G)
    for _ in range(2):
        synset.optim_zero_grad()
        vox_syn, _ = synset.get()
        loss = torch.sum(Gt * torch.tanh(vox_syn))
        loss.backward()
        synset.optim_step()
    freq2 = synset.freq_syn.detach().numpy().copy()
    decode2 = synset.get(need_copy=True)[0].detach().numpy()
    print(f"{name}: npc {npc}, sel {sel.tolist()}, mask ones per class "
          f"{mask.reshape(NUM_CLASSES, npc, ch, -1)[:, 0, 0].sum(-1).tolist()}")
    out = dict(u8=u8, sel=sel, k=np.int32(spec["k"]), ipc=np.int32(spec["ipc"]),
               npc=np.int32(npc), dct_all=dct_all.numpy(), idct_all=idct_all, freq0=freq0,
               mask=mask.astype(np.uint8), decode0=decode0, G=G,
               lr=np.float32(spec["lr"]), mom=np.float32(MOM), freq2=freq2, decode2=decode2)
    return {f"{name}_{k}": v for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", required=True, help="checkout of sdh0818/FreD")
    common.add_commit_arg(ap, "sdh0818/FreD")
    a = ap.parse_args()
    ref = os.path.abspath(a.ref)
    stub_utils()
    common.add_reference_path(ref, "3D-MNIST")
    import main_DM_FreD as mod  # the authors' module (SynSet; DCT from frequency_transforms)
    arrays = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in CASES.items():
            arrays.update(run_case(mod, name, spec, tmp))
    arrays["cases"] = np.array(list(CASES))
    common.save_fixture("modal_fred", repo="sdh0818/FreD", ref=ref, commit=a.commit,
                        script=__file__, **arrays)


if __name__ == "__main__":
    main()
