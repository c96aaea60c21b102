"""Parity fixture for the DM and DC losses (tests/test_parity_dm_dc.py).

    python tests/parity/make_dm_dc.py --ref=<checkout of sdh0818/FreD>

Runs the authors' code (sdh0818/FreD; the DM/DC loss lines are identical in
aailab-kaist/DDiF DM/main_DM.py and DC/main_DC.py, and both inherit them from the original
DC/DSA/DM code) on tiny deterministic inputs: the authors' ConvNet (DM/networks.py; width 4,
depth 2, instance norm, avg pooling, 8x8x3 inputs, 3 classes), DSA OFF.

* DM: per class, the lines of DM/main_DM_FreD.py 249-279 (net.train(), parameters frozen,
  embed = net.embed; loss += sum((mean(embed(real_c), 0) - mean(embed(syn_c), 0)) ** 2)),
  d loss / d syn images by autograd.
* DC: per class, the lines of DC/main_DC_FreD.py 287-313 (CrossEntropyLoss, gw_real =
  autograd.grad(...) detached, gw_syn with create_graph=True, loss += match_loss(gw_syn,
  gw_real, args) with dis_metric 'ours' from DC/utils.py), d loss / d syn images.
* distance_wb on 4-D / 3-D / 2-D / 1-D random tensors (DC/utils.py 332-349).
* DC's network update between synthetic updates: `epoch('train', ...)` (DC/utils.py) called
  inner_loop = 2 times with SGD(lr_net) on the synthetic set, aug off, batch_train >= N (one
  full batch per epoch, so the shuffle order does not matter); the resulting parameters.

torchvision is not needed for these functions: utils.py imports it at module level, so a stub
module stands in for it here. The authors' files are never modified.
"""
from __future__ import annotations

import argparse
import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity import common  # noqa: E402

NUM_CLASSES, SIDE, CH, WIDTH, DEPTH = 3, 8, 3, 4, 2
N_REAL, N_SYN = 5, 2  # real images per class (batch_real), synthetic images per class


def net_arrays(net, prefix):
    return {f"{prefix}{k}": v.detach().numpy().copy() for k, v in net.state_dict().items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="checkout of sdh0818/FreD")
    common.add_commit_arg(ap, "sdh0818/FreD")
    args = ap.parse_args()
    common.stub_torchvision()
    import torch
    # DC/utils.py and DM/utils.py both do `from networks import ...`; networks.py is the same
    # file in DM/ and DC/ (diff: whitespace only). DC/ first: match_loss / epoch live there.
    common.add_reference_path(args.ref, "DC")
    import networks  # noqa: F401  (DC/networks.py)
    import utils as dc_utils  # DC/utils.py

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    out = {}
    g = torch.Generator().manual_seed(1)
    real = torch.randn(NUM_CLASSES, N_REAL, CH, SIDE, SIDE, generator=g)
    syn = torch.randn(NUM_CLASSES * N_SYN, CH, SIDE, SIDE, generator=g) * 0.8 + 0.1
    lab_syn = torch.arange(NUM_CLASSES).repeat_interleave(N_SYN)  # class-major, as SynSet
    out["real"] = real.numpy()
    out["syn"] = syn.numpy()
    out["syn_labels"] = lab_syn.numpy()

    def make_net():
        return networks.ConvNet(channel=CH, num_classes=NUM_CLASSES, net_width=WIDTH,
                                net_depth=DEPTH, net_act="relu", net_norm="instancenorm",
                                net_pooling="avgpooling", im_size=(SIDE, SIDE))

    # ------------------------------------------------------------------ DM
    torch.manual_seed(10)
    net = make_net()
    # perturb the norm affine parameters (fresh init is ones / zeros) so a layout slip shows
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.add_(0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.add_(0.1 * torch.randn(m.bias.shape, generator=g))
    out.update(net_arrays(net, "dm_net/"))
    net.train()  # main_DM_FreD.py 249
    for p in net.parameters():
        p.requires_grad = False
    embed = net.embed
    img_syn_all = syn.clone().requires_grad_(True)
    loss = torch.tensor(0.0)
    emb_real = []
    for c in range(NUM_CLASSES):  # main_DM_FreD.py 297-317 (ConvNet branch, DSA off)
        img_real = real[c]
        img_syn = img_syn_all[c * N_SYN:(c + 1) * N_SYN]
        output_real = embed(img_real).detach()
        output_syn = embed(img_syn)
        emb_real.append(output_real.numpy())
        loss += torch.sum((torch.mean(output_real, dim=0) - torch.mean(output_syn, dim=0)) ** 2)
    loss.backward()
    out["dm_emb_real"] = np.stack(emb_real)
    out["dm_loss"] = np.float32(loss.item())
    out["dm_grad_syn"] = img_syn_all.grad.numpy()

    # ------------------------------------------------------------------ DC
    torch.manual_seed(20)
    net = make_net()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.add_(0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.add_(0.1 * torch.randn(m.bias.shape, generator=g))
    out.update(net_arrays(net, "dc_net/"))
    net.train()  # main_DC_FreD.py 259
    net_parameters = list(net.parameters())
    names = [n for n, _ in net.named_parameters()]
    out["dc_param_names"] = np.array(names)
    criterion = torch.nn.CrossEntropyLoss()
    margs = types.SimpleNamespace(dis_metric="ours", device="cpu")
    img_syn_all = syn.clone().requires_grad_(True)
    loss = torch.tensor(0.0)
    per_class = []
    for c in range(NUM_CLASSES):  # main_DC_FreD.py 288-313 (DSA off)
        img_real = real[c]
        lab_real = torch.ones((img_real.shape[0],), dtype=torch.long) * c
        img_syn = img_syn_all[c * N_SYN:(c + 1) * N_SYN]
        lab_syn_c = lab_syn[c * N_SYN:(c + 1) * N_SYN]
        output_real = net(img_real)
        loss_real = criterion(output_real, lab_real)
        gw_real = torch.autograd.grad(loss_real, net_parameters)
        gw_real = list((_.detach().clone() for _ in gw_real))
        output_syn = net(img_syn)
        loss_syn = criterion(output_syn, lab_syn_c)
        gw_syn = torch.autograd.grad(loss_syn, net_parameters, create_graph=True)
        lc = dc_utils.match_loss(gw_syn, gw_real, margs)
        per_class.append(lc.item())
        loss += lc
        for n, a, b in zip(names, gw_real, gw_syn):
            out[f"dc_gw_real/{c}/{n}"] = a.numpy()
            out[f"dc_gw_syn/{c}/{n}"] = b.detach().numpy()
    loss.backward()
    out["dc_loss"] = np.float32(loss.item())
    out["dc_loss_per_class"] = np.array(per_class, np.float32)
    out["dc_grad_syn"] = img_syn_all.grad.numpy()

    # distance_wb per tensor rank (4-D conv, 3-D layernorm, 2-D linear, 1-D norm / bias)
    for shape in [(4, 3, 3, 3), (4, 2, 2), (3, 16), (4,)]:
        a = torch.randn(shape, generator=g)
        b = torch.randn(shape, generator=g) + 0.5 * a
        key = "x".join(map(str, shape))
        out[f"dwb/{key}/a"] = a.numpy()
        out[f"dwb/{key}/b"] = b.numpy()
        out[f"dwb/{key}/d"] = np.float32(dc_utils.distance_wb(a, b).item())

    # DC's network update between synthetic updates (main_DC_FreD.py 324-329): inner_loop
    # epochs of utils.epoch('train', ...) with SGD(lr_net) on the synthetic set, aug off.
    inner_loop, lr_net = 2, 0.5  # lr large enough that two steps move the weights visibly
    optimizer_net = torch.optim.SGD(net.parameters(), lr=lr_net)
    optimizer_net.zero_grad()
    eargs = types.SimpleNamespace(device="cpu", dsa=False)
    dst = dc_utils.TensorDataset(syn.clone(), lab_syn.clone())
    loader = torch.utils.data.DataLoader(dst, batch_size=256, shuffle=True, num_workers=0)
    for _ in range(inner_loop):
        dc_utils.epoch("train", loader, net, optimizer_net, criterion, eargs, aug=False)
    out.update(net_arrays(net, "dc_trained/"))
    out["dc_inner_loop"] = np.int32(inner_loop)
    out["dc_lr_net"] = np.float32(lr_net)

    common.save_fixture("dm_dc", repo="sdh0818/FreD", ref=args.ref, commit=args.commit,
                        script=__file__, **out)


if __name__ == "__main__":
    main()
