"""Parity fixture for DM and DC on voxels and DM on video (tests/test_parity_modal_losses.py).

    python tests/parity/make_modal_losses.py --ref=<checkout of aailab-kaist/DDiF>

Runs the authors' code (aailab-kaist/DDiF) on tiny deterministic inputs, on CPU:

* voxels (3D_Voxel/): the authors' Conv3DNet (networks.py; width 4, depth 2, 8^3 volumes,
  1 channel, 3 classes), its InstanceNorm3d affine parameters perturbed so a layout slip shows.
  - DM: the lines of 3D_Voxel/main_DM.py 158-191 (net.train(), parameters frozen, embed =
    net.embed; per class loss_c = sum((mean(embed(real_c), 0) - mean(embed(syn_c), 0)) ** 2),
    backward per class); the summed loss and d loss / d syn voxels.
  - DC: the lines of 3D_Voxel/main_DC.py 199-224 (CrossEntropyLoss; gw_real detached,
    gw_syn with create_graph=True; loss += match_loss(gw_syn, gw_real, args), dis_metric
    'ours', 3D_Voxel/utils.py match_loss / distance_wb); the summed loss, per-class losses,
    class 0's real/syn parameter gradients and d loss / d syn voxels.
  - the authors' DSA call with their default strategy '' (main_DM.py:34, main_DC.py:35):
    utils.DiffAugment(x, '', seed=..., param=ParamDiffAug()) is recorded as the identity.
  - distance_wb on a 5-D tensor (a 3-D conv weight: its reshape cases stop at 4-D).
* video (Video/): the authors' ConvNet3D (networks.py:767; depth 1, net_width 64, first
  block 64 channels as theirs, 3 frames of 4x4 RGB, 2 classes; net_norm 'none',
  net_pooling 'maxpooling' as Video/utils.py:679 builds it). DM: the lines of
  Video/distill_DDiF.py 104-134 (no augmentation); the summed loss, the real embeddings
  and d loss / d syn clips. The authors' clips are (N, T, C, H, W); the fixture stores them
  channels last (N, T, H, W, C) for jaxdd.

The network weights are stored as float16 (values that are exact in float16, copied into
the float32 PyTorch modules), which halves the fixture; every input and result is float32.

torchvision is not needed for these functions: 3D_Voxel/utils.py imports it at module level,
so a stub module stands in for it here. The authors' files are never modified.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity import common  # noqa: E402

NAME = "modal_losses"
# The authors' lines this generator restates (their loss loops live inline in main()) are
# listed, with their hashes at the pinned commit, in tests/parity/common.py RESTATED[NAME].

V_CLASSES, V_SIDE, V_WIDTH, V_DEPTH = 3, 8, 6, 3      # voxels (8^3: 12, 6, 3, 1 after the blocks)
V_REAL, V_SYN = 3, 2                                   # real / synthetic volumes per class
C_CLASSES, C_T, C_SIDE, C_CH, C_WIDTH = 2, 3, 4, 3, 64  # video clips (depth 1: width 64, the
# first block's, since their logit conv takes net_width channels)
C_REAL, C_SYN = 3, 2


def _half_exact(net, g, torch):
    """Round every parameter to a float16-representable value (in place); perturb norm
    affine parameters (fresh init: ones / zeros) so a layout slip shows."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.InstanceNorm3d, torch.nn.GroupNorm)) and m.affine:
                m.weight.add_(0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.add_(0.1 * torch.randn(m.bias.shape, generator=g))
        for p in net.parameters():
            p.copy_(p.half().float())


def _net_arrays(net, prefix):
    """The parameters in net.parameters() order (float16, exact), keys <prefix><index>."""
    return {f"{prefix}{i:02d}": p.detach().numpy().astype(np.float16)
            for i, p in enumerate(net.parameters())}


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def voxel_part(ref, torch, g):
    common.add_reference_path(ref, "3D_Voxel")
    import networks as vnet  # 3D_Voxel/networks.py
    import utils as vutils   # 3D_Voxel/utils.py
    out = {}
    real = torch.randn(V_CLASSES, V_REAL, 1, V_SIDE, V_SIDE, V_SIDE, generator=g)
    syn = torch.randn(V_CLASSES * V_SYN, 1, V_SIDE, V_SIDE, V_SIDE, generator=g) * 0.8 + 0.1
    lab_syn = torch.arange(V_CLASSES).repeat_interleave(V_SYN)  # class-major, as DDiF.get
    # channels last for jaxdd: (.., D, H, W, 1)
    out["vox/real"] = real.permute(0, 1, 3, 4, 5, 2).numpy()
    out["vox/syn"] = syn.permute(0, 2, 3, 4, 1).numpy()
    out["vox/syn_labels"] = lab_syn.numpy()

    def make_net():
        return vnet.Conv3DNet(channel=1, num_classes=V_CLASSES, net_width=V_WIDTH,
                              net_depth=V_DEPTH, im_size=(V_SIDE,) * 3)

    # the authors' DSA call with their default strategy '' is the identity
    dsa_args = types.SimpleNamespace(dsa_strategy="", dsa_param=vutils.ParamDiffAug())
    dsa_args.dsa = False if dsa_args.dsa_strategy in ['none', 'None'] else True  # main_DM:65
    x = real[0]
    y = vutils.DiffAugment(x, dsa_args.dsa_strategy, seed=123, param=dsa_args.dsa_param)
    out["vox/dsa_flag"] = np.bool_(dsa_args.dsa)
    out["vox/dsa_default_is_identity"] = np.bool_(y is x)

    # ------------------------------------------------------------- DM (main_DM.py 157-191)
    torch.manual_seed(10)
    net = make_net()
    _half_exact(net, g, torch)
    out.update(_net_arrays(net, "vox/dm_net/"))
    net.train()
    for param in list(net.parameters()):
        param.requires_grad = False
    embed = net.embed
    syn_all = syn.clone().requires_grad_(True)
    loss = torch.tensor(0.0)
    for c in range(V_CLASSES):
        loss_c = torch.tensor(0.0)
        vox_real = real[c]
        vox_syn = syn_all[c * V_SYN:(c + 1) * V_SYN]
        output_real = embed(vox_real).detach()
        output_syn = embed(vox_syn)
        loss_c += torch.sum((torch.mean(output_real, dim=0) - torch.mean(output_syn, dim=0)) ** 2)
        loss_c.backward()  # per class, as main_DM.py 188-190 (each class its own syn rows)
        loss += loss_c.detach()
    out["vox/dm_loss"] = np.float32(loss.item())
    out["vox/dm_grad_syn"] = syn_all.grad.permute(0, 2, 3, 4, 1).numpy()

    # ------------------------------------------------------------- DC (main_DC.py 199-224)
    torch.manual_seed(20)
    net = make_net()
    _half_exact(net, g, torch)
    out.update(_net_arrays(net, "vox/dc_net/"))
    net.train()
    net_parameters = list(net.parameters())
    criterion = torch.nn.CrossEntropyLoss()
    margs = types.SimpleNamespace(dis_metric="ours", device="cpu")
    syn_all = syn.clone().requires_grad_(True)
    loss = torch.tensor(0.0)
    per_class = []
    for c in range(V_CLASSES):
        vox_real = real[c]
        lab_real = torch.ones((vox_real.shape[0],), dtype=torch.long) * c
        vox_syn = syn_all[c * V_SYN:(c + 1) * V_SYN]
        lab_syn_c = lab_syn[c * V_SYN:(c + 1) * V_SYN]
        output_real = net(vox_real)
        loss_real = criterion(output_real, lab_real)
        gw_real = torch.autograd.grad(loss_real, net_parameters)
        gw_real = list((_.detach().clone() for _ in gw_real))
        output_syn = net(vox_syn)
        loss_syn = criterion(output_syn, lab_syn_c)
        gw_syn = torch.autograd.grad(loss_syn, net_parameters, create_graph=True)
        lc = vutils.match_loss(gw_syn, gw_real, margs)
        per_class.append(lc.item())
        loss += lc
        for i, (a, b) in enumerate(zip(gw_real, gw_syn)):
            if c == 0:  # class 0's parameter gradients (the fixture stays small)
                out[f"vox/dc_gw_real/{i:02d}"] = a.numpy()
                out[f"vox/dc_gw_syn/{i:02d}"] = b.detach().numpy()
    loss.backward()
    out["vox/dc_loss"] = np.float32(loss.item())
    out["vox/dc_loss_per_class"] = np.array(per_class, np.float32)
    out["vox/dc_grad_syn"] = syn_all.grad.permute(0, 2, 3, 4, 1).numpy()

    # distance_wb on a 5-D (3-D conv weight) tensor: PyTorch layout (out, in, kd, kh, kw)
    a = torch.randn((4, 2, 3, 3, 3), generator=g)
    b = torch.randn((4, 2, 3, 3, 3), generator=g) + 0.5 * a
    out["vox/dwb5/a"] = a.numpy()
    out["vox/dwb5/b"] = b.numpy()
    out["vox/dwb5/d"] = np.float32(vutils.distance_wb(a, b).item())
    return out


def video_part(ref, torch, g):
    vnet = _load("ddif_video_networks", os.path.join(ref, "Video", "networks.py"))
    out = {}
    real = torch.randn(C_CLASSES, C_REAL, C_T, C_CH, C_SIDE, C_SIDE, generator=g)
    syn = torch.randn(C_CLASSES * C_SYN, C_T, C_CH, C_SIDE, C_SIDE, generator=g) * 0.8 + 0.1
    out["vid/real"] = real.permute(0, 1, 2, 4, 5, 3).numpy()
    out["vid/syn"] = syn.permute(0, 1, 3, 4, 2).numpy()
    out["vid/syn_labels"] = torch.arange(C_CLASSES).repeat_interleave(C_SYN).numpy()
    torch.manual_seed(30)
    # as Video/utils.py:679 (net_norm 'none', 'maxpooling'), tiny width / depth / frames
    net = vnet.ConvNet3D(channel=C_CH, num_classes=C_CLASSES, net_width=C_WIDTH, net_depth=1,
                         net_act="relu", net_norm="none", net_pooling="maxpooling",
                         im_size=(C_SIDE, C_SIDE), frames=C_T)
    _half_exact(net, g, torch)
    out.update(_net_arrays(net, "vid/dm_net/"))
    # ------------------------------------------------------- DM (distill_DDiF.py 104-134)
    net.train()
    for param in list(net.parameters()):
        param.requires_grad = False
    embed = net.embed
    syn_all = syn.clone().requires_grad_(True)
    loss = torch.tensor(0.0)
    emb_real = []
    for c in range(0, C_CLASSES):
        loss_c = torch.tensor(0.0)
        vid_real = real[c]
        vid_syn = syn_all[c * C_SYN:(c + 1) * C_SYN]
        output_real = embed(vid_real).detach()
        output_syn = embed(vid_syn)
        emb_real.append(output_real.numpy())
        loss_c += torch.sum((torch.mean(output_real, dim=0) - torch.mean(output_syn, dim=0)) ** 2)
        loss_c.backward()
        loss += loss_c.detach()
    out["vid/dm_emb_real"] = np.stack(emb_real)  # the authors' (C, T, H, W) flatten order
    out["vid/dm_loss"] = np.float32(loss.item())
    out["vid/dm_grad_syn"] = syn_all.grad.permute(0, 1, 3, 4, 2).numpy()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="checkout of aailab-kaist/DDiF")
    common.add_commit_arg(ap, "aailab-kaist/DDiF")
    args = ap.parse_args()
    common.stub_torchvision()
    import torch
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    g = torch.Generator().manual_seed(1)
    out = {}
    out.update(voxel_part(args.ref, torch, g))
    out.update(video_part(args.ref, torch, g))
    common.save_fixture(NAME, repo="aailab-kaist/DDiF", ref=args.ref, commit=args.commit,
                        script=__file__, **out)


if __name__ == "__main__":
    main()
