"""Parity fixture for FreD: the authors' DCT, EVR mask, masked decode, init and SGD steps.

    python tests/parity/make_fred.py --ref=<checkout of sdh0818/FreD>

Runs sdh0818/FreD's own classes (TM/frequency_transforms.py: DCT; TM/main_TM_FreD.py: SynSet,
whose code is identical in DM/, DC/ and ImageNet-abcde/ -- checked below) on tiny
deterministic inputs and writes tests/parity/fixtures/fred.npz. Needs torch (CPU); the
authors' module imports torchvision and matplotlib only for logging/plots, which are stubbed
here (no .cuda() is reached: SynSet runs on device 'cpu'). Never edits the authors' files.

Cases (uint8 pixels -> float32 (u8 / 255 - 0.5) / 0.25, computed identically by the test):
  rgb8   3 x 8 x 8,  2 classes x 10 images, ipc 1, k 8   -> 8 instances per class
  gray8  1 x 8 x 8,  2 classes x 6 images,  ipc 1, k 16  -> 4 instances per class
  gray28 1 x 28 x 28, 2 classes x 8 images,  ipc 1, k 112 -> 7 per class (MNIST size)
Stored per case (prefix <case>_): u8 (classes, n, C, H, W) inputs; sel (classes, npc) the
images SynSet.init selected (np.random.permutation, recorded); dct_all: DCT.forward of every
input image; freq0: SynSet.freq_syn after init (full spectrum, as the authors keep it);
mask: SynSet.mask (N, C, H, W); evr: the per-class explained-variance ratios (their loop,
restated below); decode0: SynSet.get() after init; G, lr, mom, freq2/decode2: two SGD steps
of SynSet's own optimizer on loss = sum(G * tanh(decoded)); freq1: after the first step
(the 8x8 cases only; gray28 stores u8, sel, freq0, mask, evr, decode0).
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

CASES = {
    "rgb8": dict(channels=3, side=8, per_class=10, ipc=1, k=8, lr=50.0, seed=1),
    "gray8": dict(channels=1, side=8, per_class=6, ipc=1, k=16, lr=50.0, seed=2),
    "gray28": dict(channels=1, side=28, per_class=8, ipc=1, k=112, lr=500.0, seed=3),
}
NUM_CLASSES = 2
MOM = 0.5


def stub_plotting():
    """torchvision / matplotlib are only used by SynSet for pictures: no-op stand-ins."""
    import torch

    tv = types.ModuleType("torchvision")
    tv.utils = types.ModuleType("torchvision.utils")
    tv.utils.make_grid = lambda *a, **k: torch.zeros(3, 1, 1)
    tv.utils.save_image = lambda *a, **k: None
    tv.datasets = types.ModuleType("torchvision.datasets")
    tv.transforms = types.ModuleType("torchvision.transforms")
    mpl = types.ModuleType("matplotlib")
    plt = types.ModuleType("matplotlib.pyplot")
    for name in ("imshow", "savefig", "close", "figure"):
        setattr(plt, name, lambda *a, **k: None)
    mpl.pyplot = plt
    sys.modules.update({"torchvision": tv, "torchvision.utils": tv.utils,
                        "torchvision.datasets": tv.datasets,
                        "torchvision.transforms": tv.transforms,
                        "matplotlib": mpl, "matplotlib.pyplot": plt})


def check_synset_identical(ref):
    """SynSet is the same code in TM/, DM/, DC/ and ImageNet-abcde/ (one fixture covers all)."""
    def block(path):
        src = open(os.path.join(ref, path)).read()
        return src[src.index("class SynSet"):src.index("\ndef main")]
    base = block("TM/main_TM_FreD.py")
    for p in ("DM/main_DM_FreD.py", "DC/main_DC_FreD.py", "ImageNet-abcde/main_TM_FreD.py",
              "ImageNet-abcde/main_DM_FreD.py", "ImageNet-abcde/main_DC_FreD.py"):
        assert block(p) == base, f"SynSet differs in {p}"
    for p in ("DM", "DC", "ImageNet-abcde"):
        assert (open(os.path.join(ref, p, "frequency_transforms.py")).read()
                == open(os.path.join(ref, "TM", "frequency_transforms.py")).read()), p


def to_float(u8):
    return ((u8.astype(np.float32) / np.float32(255.0) - np.float32(0.5))
            / np.float32(0.25)).astype(np.float32)


def authors_evr(freq_syn, num_classes, npc, im_size):
    """The EVR values of SynSet.init_mask (TM/main_TM_FreD.py:80-101), restated because the
    method keeps them local: channel mean, flatten, centre, torch.cov, e_p^T cov e_p / trace."""
    import torch
    out = []
    for c in range(num_classes):
        freq_c = copy.deepcopy(freq_syn[c * npc:(c + 1) * npc].detach())
        freq_c = torch.mean(freq_c, 1)
        flat = torch.flatten(freq_c, 1)
        flat = flat - torch.mean(flat, dim=0)
        cov = torch.cov(flat.T)
        total = torch.sum(torch.diag(cov))
        d = int(np.prod(im_size))
        vr = torch.zeros((d, 1))
        for idx in range(d):
            e = torch.eye(d)[idx].reshape(-1, 1)
            vr[idx] = (torch.matmul(torch.matmul(e.T, cov), e) / total).item()
        out.append(vr.flatten().numpy())
    return np.stack(out).astype(np.float32)


def run_case(mod, name, spec, tmp):
    import torch
    rng = np.random.default_rng(spec["seed"])
    ch, side, n = spec["channels"], spec["side"], spec["per_class"]
    # smooth-ish images (low-frequency structure + noise), as uint8 pixels
    lo = rng.uniform(0, 255, size=(NUM_CLASSES, n, ch, 3, 3))
    t = (np.arange(side) + 0.5) / side
    basis = np.stack([np.ones(side), np.cos(np.pi * t), np.cos(2 * np.pi * t)])  # (3, side)
    img = np.einsum("kncuv,uh,vw->knchw", lo - 127.5, basis, basis) * 0.5 + 127.5
    img = img + rng.normal(0, 20, size=img.shape)
    u8 = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    x = torch.from_numpy(to_float(u8).reshape(NUM_CLASSES * n, ch, side, side))
    labels = torch.arange(NUM_CLASSES).repeat_interleave(n)
    indices_class = [list(range(c * n, (c + 1) * n)) for c in range(NUM_CLASSES)]

    args = argparse.Namespace(
        log_path=os.path.join(tmp, f"{name}.log"), save_path=tmp, channel=ch,
        num_classes=NUM_CLASSES, im_size=(side, side), device="cpu", ipc=spec["ipc"],
        lr_freq=spec["lr"], mom_freq=MOM, msz_per_channel=spec["k"])
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
    except IndexError as e:
        # init_mask's picture (TM/main_TM_FreD.py:110-111) indexes np.arange(10) * npc, i.e.
        # assumes >= 10 classes; with 2 classes it raises AFTER the mask loop (lines 77-107)
        # has finished. Only that line may fail; then finish init() as lines 63-64 do.
        import traceback
        last = traceback.extract_tb(e.__traceback__)[-1]
        assert last.name == "init_mask" and "make_grid" in last.line, last
        synset.optim_zero_grad()
    finally:
        np.random.permutation = orig_perm
    assert len(recorded) == NUM_CLASSES
    sel = np.stack([r[:npc] - c * n for c, r in enumerate(recorded)]).astype(np.int32)

    dct_all = synset.dct.forward(x).detach().numpy()
    freq0 = synset.freq_syn.detach().numpy().copy()
    mask = synset.mask.detach().numpy().copy()
    evr = authors_evr(synset.freq_syn, NUM_CLASSES, npc, (side, side))
    decode0 = synset.get(need_copy=True)[0].detach().numpy()

    # two steps of SynSet's own optimizer (SGD lr_freq, momentum mom_freq)
    G = rng.normal(size=decode0.shape).astype(np.float32)
    Gt = torch.from_numpy(G)
    freqs = []
    for _ in range(2):
        synset.optim_zero_grad()
        images, _ = synset.get()
        loss = torch.sum(Gt * torch.tanh(images))
        loss.backward()
        synset.optim_step()
        freqs.append(synset.freq_syn.detach().numpy().copy())
    decode2 = synset.get(need_copy=True)[0].detach().numpy()
    print(f"{name}: npc {npc}, sel {sel.tolist()}, mask ones per class "
          f"{mask.reshape(NUM_CLASSES, npc, ch, -1)[:, 0, 0].sum(-1).tolist()}")
    out = dict(u8=u8, sel=sel, k=np.int32(spec["k"]), ipc=np.int32(spec["ipc"]),
               npc=np.int32(npc), dct_all=dct_all, freq0=freq0, mask=mask.astype(np.uint8),
               evr=evr, decode0=decode0, G=G, lr=np.float32(spec["lr"]),
               mom=np.float32(MOM), freq1=freqs[0], freq2=freqs[1], decode2=decode2)
    if name == "gray28":  # keep the fixture small: the 28x28 case checks DCT/mask/decode/init
        for key in ("dct_all", "G", "lr", "mom", "freq1", "freq2", "decode2"):
            del out[key]
    return {f"{name}_{k}": v for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", required=True, help="checkout of sdh0818/FreD")
    common.add_commit_arg(ap, "sdh0818/FreD")
    a = ap.parse_args()
    ref = os.path.abspath(a.ref)
    check_synset_identical(ref)
    stub_plotting()
    common.add_reference_path(ref, "TM")
    import main_TM_FreD as mod  # the authors' module (SynSet, DCT)
    arrays = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in CASES.items():
            arrays.update(run_case(mod, name, spec, tmp))
    arrays["cases"] = np.array(list(CASES))
    common.save_fixture("fred", repo="sdh0818/FreD", ref=ref, commit=a.commit,
                        script=__file__, **arrays)


if __name__ == "__main__":
    main()
