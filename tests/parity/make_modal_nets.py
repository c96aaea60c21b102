"""Parity fixture: the authors' voxel and video networks (Conv3DNet, ConvNet3D) -- logits,
embeddings and the parameter gradients of a cross-entropy loss.

    python tests/parity/make_modal_nets.py --ref=<checkout of aailab-kaist/DDiF> \\
        --fred-ref=<checkout of sdh0818/FreD>

Modules run (imported from the checkouts, CPU, float32):
  DDiF 3D_Voxel/networks.py Conv3DNet, FreD 3D-MNIST/networks.py Conv3DNet,
  DDiF Video/networks.py ConvNet3D (net_norm='none', net_pooling='maxpooling', as
  Video/utils.py:678-679 builds it).
Cases (CASES): small widths/depths the constructors accept, tiny inputs:
  voxel_ddif  DDiF Conv3DNet, 1 channel 16^3 (first conv padded by 3), width 8, depth 3
  voxel_rgb   DDiF Conv3DNet, 3 channels 8^3 (padding 1), width 8, depth 2
  voxel_fred  FreD Conv3DNet, 1 channel 16^3, width 8, depth 3
  video       DDiF ConvNet3D, 8 frames of 3x16x16, width 8, depth 2 (head pool (2, 1, 1))
  video_big   DDiF ConvNet3D, 8 frames of 1x112x112, width 4, depth 3 (head pool (2, 2, 2))
Weights and inputs are NOT stored: they are drawn from numpy's legacy RandomState (a frozen
stream) by `case_arrays`, which the test calls too; the weights are copied into the authors'
module (conv/linear U(-1/sqrt(fan_in), +), norm scale 1 + 0.2 N(0,1), norm bias 0.2 N(0,1)).
Stored per case: logits and loss (ConvNet3D in eval mode: its dropout is random in train
mode; Conv3DNet has no train/eval difference), embed (the authors' `net.embed`, their
(C, *grid) flatten order), the label vector, and per parameter (net.parameters() order) the
gradient d loss / d p: in full when it has <= FULL entries, else its L2 norm and its values at
SAMPLE flat indices (PyTorch layout) drawn by `case_arrays` -- the 3x7x7 video kernels with
64 input channels would otherwise exceed the fixture budget.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from parity.common import add_commit_arg, checked_commit, save_fixture  # noqa: E402

NUM_CLASSES = 4
FULL, SAMPLE = 4096, 512
# name: (source, channel, grid, width, depth, batch, seed); grid = (D, H, W) or (T, H, W)
CASES = {
    "voxel_ddif": ("ddif_voxel", 1, (16, 16, 16), 8, 3, 2, 11),
    "voxel_rgb": ("ddif_voxel", 3, (8, 8, 8), 8, 2, 2, 12),
    "voxel_fred": ("fred_voxel", 1, (16, 16, 16), 8, 3, 2, 13),
    "video": ("ddif_video", 3, (8, 16, 16), 8, 2, 2, 14),
    "video_big": ("ddif_video", 1, (8, 112, 112), 4, 3, 1, 15),
}


def torch_param_shapes(case: str) -> list:
    """The authors' parameter shapes (net.parameters() order) of a case."""
    src, c, grid, width, depth, _, _ = CASES[case]
    shapes = []
    if src.endswith("voxel"):
        cin = c
        g = list(grid)
        for d in range(depth):
            shapes += [(width, cin, 3, 3, 3), (width,), (width,), (width,)]
            pad = 3 if (c == 1 and d == 0) else 1
            g = [(s + 2 * pad - 2) // 2 for s in g]
            cin = width
        shapes += [(NUM_CLASSES, width * int(np.prod(g))), (NUM_CLASSES,)]
    else:
        cin = c
        for d in range(depth):
            cout = 64 if d == 0 else width
            shapes += [(cout, cin, 3, 7, 7), (cout,)]
            cin = cout
        shapes += [(NUM_CLASSES, width, 1, 1, 1), (NUM_CLASSES,)]
    return shapes


def case_arrays(case: str) -> dict:
    """Deterministic inputs of a case: x (authors' layout: voxels (N, C, D, H, W), video
    (N, T, C, H, W)), labels, the parameters (PyTorch layout, net.parameters() order) and the
    sampled gradient indices of the large parameters."""
    src, c, grid, width, depth, batch, seed = CASES[case]
    rs = np.random.RandomState(seed)
    if src.endswith("voxel"):
        x = rs.standard_normal((batch, c) + grid)
    else:
        x = rs.standard_normal((batch, grid[0], c) + grid[1:])
    labels = rs.randint(0, NUM_CLASSES, size=batch)
    params, index = [], []
    shapes = torch_param_shapes(case)
    for i, s in enumerate(shapes):
        if src.endswith("voxel") and len(s) == 1 and i < len(shapes) - 2 and i % 4 in (1, 2, 3):
            kind = i % 4   # 1: conv bias, 2: norm weight, 3: norm bias
            if kind == 2:
                params.append(1.0 + 0.2 * rs.standard_normal(s))
                index.append(None)
                continue
            if kind == 3:
                params.append(0.2 * rs.standard_normal(s))
                index.append(None)
                continue
        if len(s) == 1:  # a bias: fan_in of the layer before
            fan_in = int(np.prod(shapes[i - 1][1:]))
        else:
            fan_in = int(np.prod(s[1:]))
        b = 1.0 / np.sqrt(fan_in)
        params.append(rs.uniform(-b, b, s))
        n = int(np.prod(s))
        index.append(np.sort(rs.choice(n, SAMPLE, replace=False)) if n > FULL else None)
    return {"x": x.astype(np.float32), "labels": labels.astype(np.int64),
            "params": [p.astype(np.float32) for p in params], "index": index}


def _load(path: str, name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="checkout of aailab-kaist/DDiF")
    ap.add_argument("--fred-ref", required=True, help="checkout of sdh0818/FreD")
    add_commit_arg(ap, "aailab-kaist/DDiF")
    add_commit_arg(ap, "sdh0818/FreD", flag="--fred-commit")
    args = ap.parse_args()
    fred_commit = checked_commit(args.fred_ref, args.fred_commit)
    mods = {
        "ddif_voxel": _load(os.path.join(args.ref, "3D_Voxel", "networks.py"), "ddif_voxel_nets"),
        "fred_voxel": _load(os.path.join(args.fred_ref, "3D-MNIST", "networks.py"),
                            "fred_voxel_nets"),
        "ddif_video": _load(os.path.join(args.ref, "Video", "networks.py"), "ddif_video_nets"),
    }
    torch.set_num_threads(1)
    out = {}
    for case, (src, c, grid, width, depth, batch, seed) in CASES.items():
        arr = case_arrays(case)
        if src.endswith("voxel"):
            net = mods[src].Conv3DNet(channel=c, num_classes=NUM_CLASSES, net_width=width,
                                      net_depth=depth, im_size=grid)
            net.train()
        else:
            net = mods[src].ConvNet3D(channel=c, num_classes=NUM_CLASSES, net_width=width,
                                      net_depth=depth, net_act="relu", net_norm="none",
                                      net_pooling="maxpooling", frames=grid[0],
                                      im_size=grid[1:])
            net.eval()   # dropout off (random in train mode); nothing else differs
        params = list(net.parameters())
        assert [tuple(p.shape) for p in params] == torch_param_shapes(case), case
        with torch.no_grad():
            for p, v in zip(params, arr["params"]):
                p.copy_(torch.from_numpy(v))
        x = torch.from_numpy(arr["x"])
        labels = torch.from_numpy(arr["labels"])
        logits = net(x)
        loss = torch.nn.CrossEntropyLoss()(logits, labels)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            emb = net.embed(x)
        out[f"{case}_logits"] = logits.detach().numpy()
        out[f"{case}_loss"] = np.float32(loss.item())
        out[f"{case}_embed"] = emb.numpy()
        out[f"{case}_labels"] = arr["labels"].astype(np.int32)
        for i, (g, idx) in enumerate(zip(grads, arr["index"])):
            g = g.numpy()
            if idx is None:
                out[f"{case}_g{i}"] = g
            else:
                out[f"{case}_g{i}_norm"] = np.float32(np.linalg.norm(g.astype(np.float64)))
                out[f"{case}_g{i}_sample"] = g.reshape(-1)[idx]
        print(case, tuple(logits.shape), "loss", round(loss.item(), 5), "embed", tuple(emb.shape))
    out["fred_source"] = np.array(f"sdh0818/FreD@{fred_commit} 3D-MNIST/networks.py")
    save_fixture("modal_nets", repo="aailab-kaist/DDiF", ref=args.ref, commit=args.commit,
                 script=__file__, **out)


if __name__ == "__main__":
    main()
