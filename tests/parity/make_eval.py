"""Fixture: MTT's evaluation trainer (utils.evaluate_synset) on a tiny problem.

    python tests/parity/make_eval.py --ref=<checkout of GeorgeCazenavette/mtt-distillation>

Runs the authors' `evaluate_synset` (utils.py:352-389) unchanged, with:
* a tiny MTT ConvNet (networks.ConvNet: width 8, depth 2, instance norm, avg pooling, 8x8x3);
* 10 training images, 4 classes, batch_train 4 (3 batches per pass, the last one partial);
* epoch_eval_train = 4: their loop makes 5 passes and drops the lr x0.1 (re-creating the
  optimizer: momentum reset) after pass 4 // 2 + 1 = 3, i.e. 4 passes at lr, 1 at lr / 10;
* DSA off (args.dsa False and dc_aug_param None: `epoch` leaves the images as they are);
* a fixed minibatch order: torch.utils.data.DataLoader is replaced, for the duration of the
  call, by a loader that shuffles with the permutations stored in the fixture (pass e of
  the training loader visits perms[e] in consecutive batches of 4, drop_last False, as
  DataLoader(shuffle=True) does with its own random permutation).

Stores the initial and final parameters (torch layout, `net.parameters()` order), data,
permutations, lr and the test accuracy, and ``authors_sgd`` (JSON): the keyword arguments of
every torch.optim.SGD the authors' evaluate_synset created during the call (their
momentum 0.9 / weight_decay 5e-4 at utils.py:358 and 379, recorded as run, not typed here),
which tests/test_parity_eval.py holds jaxdd.evaluate.evaluate_synthetic's defaults to.
CI never runs this script.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity.common import (add_commit_arg, add_reference_path, save_fixture,  # noqa: E402
                           stub_torchvision)

REPO = "GeorgeCazenavette/mtt-distillation"

N, NT, C, S, K, BATCH, EPOCHS, LR = 10, 12, 3, 8, 4, 4, 4, 0.05


class FixedOrderLoader:
    """Stands in for torch.utils.data.DataLoader inside evaluate_synset."""
    perms: list = []

    def __init__(self, dataset, batch_size=1, shuffle=False, num_workers=0, **kw):
        # the authors' utils.TensorDataset (.images, .labels) or an (x, y) pair
        self.x, self.y = ((dataset.images, dataset.labels) if hasattr(dataset, "images")
                          else dataset)
        self.batch_size, self.shuffle = batch_size, shuffle

    def __iter__(self):
        n = len(self.y)
        idx = np.asarray(FixedOrderLoader.perms.pop(0)) if self.shuffle else np.arange(n)
        for i in range(0, n, self.batch_size):
            b = idx[i:i + self.batch_size]
            yield self.x[b], self.y[b]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help=f"checkout of {REPO}")
    add_commit_arg(ap, REPO)
    args = ap.parse_args()
    add_reference_path(args.ref)
    stub_torchvision()
    import torch
    import torch.utils.data
    import utils  # the authors' utils.py
    from networks import ConvNet

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, C, S, S)).astype(np.float32)
    y = (np.arange(N) % K).astype(np.int64)
    xt = rng.normal(size=(NT, C, S, S)).astype(np.float32)
    yt = (np.arange(NT) % K).astype(np.int64)
    perms = np.stack([rng.permutation(N) for _ in range(EPOCHS + 1)])

    net = ConvNet(channel=C, num_classes=K, net_width=8, net_depth=2, net_act="relu",
                  net_norm="instancenorm", net_pooling="avgpooling", im_size=(S, S))
    init = [p.detach().numpy().copy() for p in net.parameters()]

    class Args:  # the fields evaluate_synset / epoch read (distill.py passes its args)
        lr_net = LR
        epoch_eval_train = EPOCHS
        batch_train = BATCH
        dsa = False
        dc_aug_param = None
        dataset = "tiny"
        device = "cpu"

    FixedOrderLoader.perms = [list(p) for p in perms]
    testloader = FixedOrderLoader((torch.tensor(xt), torch.tensor(yt)), batch_size=256)
    sgd_calls = []
    orig_sgd = torch.optim.SGD

    class RecordedSGD(orig_sgd):  # the authors' optimizer, its arguments recorded
        def __init__(self, params, **kw):
            sgd_calls.append({k: float(v) for k, v in kw.items()})
            super().__init__(params, **kw)

    orig = torch.utils.data.DataLoader
    torch.utils.data.DataLoader = FixedOrderLoader
    torch.optim.SGD = RecordedSGD
    try:
        net, acc_train, acc_test = utils.evaluate_synset(
            0, net, torch.tensor(x), torch.tensor(y), testloader, Args())
    finally:
        torch.utils.data.DataLoader = orig
        torch.optim.SGD = orig_sgd
    # one optimizer at lr, one re-created at the drop (lr / 10)
    assert len(sgd_calls) == 2 and sgd_calls[0]["lr"] == LR, sgd_calls
    print("authors' SGD:", sgd_calls)
    assert not FixedOrderLoader.perms, "every stored permutation must be used once"
    final = [p.detach().numpy().copy() for p in net.parameters()]
    arrays = dict(x=x, y=y, x_test=xt, y_test=yt, perms=perms, lr=np.float32(LR),
                  epochs=np.int32(EPOCHS), batch=np.int32(BATCH), acc_test=np.float64(acc_test),
                  acc_train=np.asarray(acc_train, np.float64),
                  authors_sgd=np.array(json.dumps(sgd_calls)))
    for i, (a, b) in enumerate(zip(init, final)):
        arrays[f"init_{i}"], arrays[f"final_{i}"] = a, b
    save_fixture("eval", repo=REPO, ref=args.ref, commit=args.commit, script=__file__,
                 **arrays)


if __name__ == "__main__":
    main()
