"""Parity fixture: one expert epoch of MTT's buffer.py, for a given batch order, no augmentation.

    python tests/parity/make_mtt_expert.py --ref=<checkout of GeorgeCazenavette/mtt-distillation>

What runs (the authors' code, 50dccea): networks.ConvNet(width 8, depth 2, relu,
instancenorm, avgpooling) at PyTorch's default init (torch.manual_seed), the teacher
optimizer of buffer.py:73 -- torch.optim.SGD(lr=lr_teacher=0.01, momentum=args.mom=0,
weight_decay=args.l2=0) -- and utils.epoch('train', ...) (utils.py:300-350) over a
DataLoader of utils.TensorDataset with batch_size 8 on 22 images 3x16x16 (batches of 8, 8
and a last partial batch of 6, drop_last=False as in buffer.py:60). The loader's order is
fixed with ``sampler=order`` instead of buffer.py's ``shuffle=True`` (same DataLoader, an
explicit permutation), and ``aug=False``: buffer.py trains with aug=True, i.e. DSA
(args.dsa True) -- DSA parity is a separate fixture -- or, with --dsa False, DC's
non-differentiable ``augment`` (crop_scale_rotate), which jaxdd does not offer.

Stored: x (NCHW), labels, order, lr, p<i> (parameters before, net.parameters() order),
q<i> (after the epoch), train_loss (utils.epoch's value: the batch-size-weighted mean).
utils.py imports torchvision (datasets/transforms, unused here): stubbed if absent.
"""
from __future__ import annotations

import argparse
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from parity.common import add_commit_arg, add_reference_path, save_fixture  # noqa: E402

N, CHANNEL, SIDE, NUM_CLASSES, BATCH, WIDTH, DEPTH, LR = 22, 3, 16, 10, 8, 8, 2, 0.01


def _stub_torchvision():
    try:
        import torchvision  # noqa: F401
    except ImportError:
        tv = types.ModuleType("torchvision")
        tv.datasets = types.ModuleType("torchvision.datasets")
        tv.transforms = types.ModuleType("torchvision.transforms")
        sys.modules.update({"torchvision": tv, "torchvision.datasets": tv.datasets,
                            "torchvision.transforms": tv.transforms})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="checkout of GeorgeCazenavette/mtt-distillation")
    add_commit_arg(ap, "GeorgeCazenavette/mtt-distillation")
    args = ap.parse_args()
    add_reference_path(args.ref)
    _stub_torchvision()
    import networks
    import utils

    torch.set_num_threads(1)
    torch.manual_seed(7)
    net = networks.ConvNet(channel=CHANNEL, num_classes=NUM_CLASSES, net_width=WIDTH,
                           net_depth=DEPTH, net_act="relu", net_norm="instancenorm",
                           net_pooling="avgpooling", im_size=(SIDE, SIDE))
    x = torch.randn(N, CHANNEL, SIDE, SIDE)
    labels = torch.randint(0, NUM_CLASSES, (N,))
    order = torch.randperm(N)
    before = [p.detach().clone() for p in net.parameters()]

    dst = utils.TensorDataset(x, labels)
    loader = torch.utils.data.DataLoader(dst, batch_size=BATCH, sampler=order.tolist(),
                                         num_workers=0)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=0, weight_decay=0)  # buffer.py:73
    opt.zero_grad()
    criterion = torch.nn.CrossEntropyLoss()                                     # buffer.py:55
    eargs = types.SimpleNamespace(device="cpu", dataset="CIFAR10", dsa=False)
    train_loss, train_acc = utils.epoch("train", dataloader=loader, net=net, optimizer=opt,
                                        criterion=criterion, args=eargs, aug=False)
    after = [p.detach().clone() for p in net.parameters()]
    print("train_loss", train_loss, "acc", train_acc,
          "max |delta|", max(float((a - b).abs().max()) for a, b in zip(after, before)))
    out = dict(x=x.numpy(), labels=labels.numpy().astype(np.int32),
               order=order.numpy().astype(np.int32), lr=np.float32(LR),
               batch_size=np.int32(BATCH), train_loss=np.float32(train_loss),
               num_params=np.int32(len(before)))
    for i, (b, a) in enumerate(zip(before, after)):
        out[f"p{i}"] = b.numpy()
        out[f"q{i}"] = a.numpy()
    save_fixture("mtt_expert", repo="GeorgeCazenavette/mtt-distillation", ref=args.ref,
                 commit=args.commit,
                 script=__file__, **out)


if __name__ == "__main__":
    main()
