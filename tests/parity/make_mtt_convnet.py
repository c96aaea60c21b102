"""Parity fixture: the authors' ConvNet (MTT networks.py) logits and parameter gradients.

    python tests/parity/make_mtt_convnet.py --ref=<checkout of GeorgeCazenavette/mtt-distillation>

Two cases, ConvNet(net_width=16, net_depth=3, relu, instancenorm, avgpooling), 10 classes:
  rgb:  4 images 3x32x32
  gray: 4 images 1x28x28 (the first conv is padded by 3: networks.py line 86 at 50dccea;
        im_size 28 is read as 32 at line 82, so the classifier has 16*4*4 inputs)
Weights: PyTorch's default init under torch.manual_seed, then the GroupNorm affine
parameters are set to random values (their init is ones/zeros, which would not test the
affine part). Stored per case: x (NCHW), labels, p<i> (parameters in net.parameters()
order, PyTorch layout), logits, loss = CrossEntropyLoss()(logits, labels) (mean), g<i> =
d loss / d p<i>. Everything float32 on CPU, as the authors' code computes it.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from parity.common import add_commit_arg, add_reference_path, save_fixture  # noqa: E402

WIDTH, DEPTH, NUM_CLASSES, BATCH = 16, 3, 10, 4
CASES = {"rgb": (3, 32), "gray": (1, 28)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="checkout of GeorgeCazenavette/mtt-distillation")
    add_commit_arg(ap, "GeorgeCazenavette/mtt-distillation")
    args = ap.parse_args()
    add_reference_path(args.ref)
    import networks  # the authors' module

    torch.set_num_threads(1)
    out = {}
    for ci, (case, (channel, side)) in enumerate(CASES.items()):
        torch.manual_seed(100 + ci)
        net = networks.ConvNet(channel=channel, num_classes=NUM_CLASSES, net_width=WIDTH,
                               net_depth=DEPTH, net_act="relu", net_norm="instancenorm",
                               net_pooling="avgpooling", im_size=(side, side))
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, torch.nn.GroupNorm):
                    m.weight.copy_(1.0 + 0.2 * torch.randn_like(m.weight))
                    m.bias.copy_(0.2 * torch.randn_like(m.bias))
        net.train()
        x = torch.randn(BATCH, channel, side, side)
        labels = torch.tensor([3, 0, 7, 3])
        logits = net(x)
        loss = torch.nn.CrossEntropyLoss()(logits, labels)
        params = list(net.parameters())
        grads = torch.autograd.grad(loss, params)
        out[f"{case}_x"] = x.numpy()
        out[f"{case}_labels"] = labels.numpy().astype(np.int32)
        out[f"{case}_logits"] = logits.detach().numpy()
        out[f"{case}_loss"] = np.float32(loss.item())
        out[f"{case}_num_params"] = np.int32(len(params))
        for i, (p, g) in enumerate(zip(params, grads)):
            out[f"{case}_p{i}"] = p.detach().numpy()
            out[f"{case}_g{i}"] = g.numpy()
        print(case, "logits[0]", logits[0, :4].tolist(), "loss", loss.item(),
              "classifier", tuple(net.classifier.weight.shape))
    save_fixture("mtt_convnet", repo="GeorgeCazenavette/mtt-distillation", ref=args.ref,
                 commit=args.commit,
                 script=__file__, **out)


if __name__ == "__main__":
    main()
