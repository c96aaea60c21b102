"""Parity fixture: one MTT trajectory-matching iteration -- loss and its gradients.

    python tests/parity/make_mtt_tm.py --ref=<checkout of GeorgeCazenavette/mtt-distillation>

The authors' distill.py keeps the TM iteration inline in main(); this script restates the
lines it needs (distill.py at 50dccea, line numbers below) around the authors' own modules:
networks.ConvNet (width 8, depth 2, relu, instancenorm, avgpooling, 3x16x16 inputs) wrapped
in reparam_module.ReparamModule (so the flat parameter layout is theirs), DSA off
(args.dsa False: the DiffAugment call of lines 358-359 is skipped), no texture.

  296-303  student_net = ReparamModule(ConvNet(...)); student_net.train();
           num_params = sum(numel)
  327-332  target_params / student_params / starting_params: flat vectors; here start =
           the flat_param of a seeded ConvNet, target = start + 0.02 * randn (seeded)
  334-336  syn_images = image_syn; y_hat = label_syn
  340-370  syn_steps student steps: a fresh torch.randperm when indices_chunks is empty,
           torch.split(indices, batch_syn), indices_chunks.pop() (from the END), CE
           (nn.CrossEntropyLoss, mean), grad with create_graph=True,
           student_params.append(student_params[-1] - syn_lr * grad)
  373-386  param_loss = mse_loss(sum)(theta_N, target), param_dist = mse_loss(sum)(start,
           target), both / num_params, param_loss /= param_dist
  393      grand_loss.backward() -> d loss / d image_syn and d loss / d syn_lr

10 synthetic images (IPC 1, 10 classes), batch_syn 4 (chunks 4, 4, 2: the short chunk is
popped first), syn_steps 4 (the 4th step starts a second permutation), syn_lr 0.02.
Stored: images (NCHW), labels, start, target (flat, ReparamModule layout), syn_lr,
syn_steps, batch_syn, chunks (the per-step index lists, padded with -1), loss,
grad_images (NCHW), grad_syn_lr, num_params.
The restated distill.py lines are pinned by hash (tests/parity/common.py RESTATED['mtt_tm']):
regenerating against a checkout whose lines differ stops before writing the fixture.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from parity.common import add_commit_arg, add_reference_path, save_fixture  # noqa: E402

N, CHANNEL, SIDE, NUM_CLASSES, WIDTH, DEPTH = 10, 3, 16, 10, 8, 2
SYN_STEPS, BATCH_SYN, SYN_LR = 4, 4, 0.02


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="checkout of GeorgeCazenavette/mtt-distillation")
    add_commit_arg(ap, "GeorgeCazenavette/mtt-distillation")
    args = ap.parse_args()
    add_reference_path(args.ref)
    import networks
    from reparam_module import ReparamModule

    torch.set_num_threads(1)
    torch.manual_seed(11)
    net = networks.ConvNet(channel=CHANNEL, num_classes=NUM_CLASSES, net_width=WIDTH,
                           net_depth=DEPTH, net_act="relu", net_norm="instancenorm",
                           net_pooling="avgpooling", im_size=(SIDE, SIDE))
    student_net = ReparamModule(net)                                          # 296
    student_net.train()                                                       # 301
    num_params = sum([np.prod(p.size()) for p in (student_net.parameters())])  # 303

    start = student_net.flat_param.detach().clone()
    target = start + 0.02 * torch.randn_like(start)
    image_syn = torch.randn(N, CHANNEL, SIDE, SIDE).requires_grad_(True)
    label_syn = torch.arange(NUM_CLASSES).repeat_interleave(N // NUM_CLASSES)
    syn_lr = torch.tensor(SYN_LR).requires_grad_(True)
    criterion = torch.nn.CrossEntropyLoss()

    target_params = target                                                    # 328
    student_params = [start.clone().requires_grad_(True)]                     # 330
    starting_params = start                                                   # 332
    syn_images = image_syn                                                    # 334
    y_hat = label_syn                                                         # 336
    indices_chunks = []                                                       # 340
    used = []
    torch.manual_seed(12)
    for step in range(SYN_STEPS):                                             # 342
        if not indices_chunks:
            indices = torch.randperm(len(syn_images))
            indices_chunks = list(torch.split(indices, BATCH_SYN))
        these_indices = indices_chunks.pop()
        used.append(these_indices.numpy().copy())
        x = syn_images[these_indices]
        this_y = y_hat[these_indices]
        forward_params = student_params[-1]                                   # 364
        x = student_net(x, flat_param=forward_params)
        ce_loss = criterion(x, this_y)
        grad = torch.autograd.grad(ce_loss, student_params[-1], create_graph=True)[0]
        student_params.append(student_params[-1] - syn_lr * grad)             # 370

    param_loss = torch.tensor(0.0)                                            # 373
    param_dist = torch.tensor(0.0)
    param_loss += torch.nn.functional.mse_loss(student_params[-1], target_params, reduction="sum")
    param_dist += torch.nn.functional.mse_loss(starting_params, target_params, reduction="sum")
    param_loss /= num_params                                                  # 383
    param_dist /= num_params
    param_loss /= param_dist
    grand_loss = param_loss
    grand_loss.backward()                                                     # 393

    chunks = np.full((SYN_STEPS, BATCH_SYN), -1, np.int32)
    for t, c in enumerate(used):
        chunks[t, :len(c)] = c
    print("chunks", [c.tolist() for c in used], "loss", grand_loss.item(),
          "d/d syn_lr", syn_lr.grad.item(), "num_params", int(num_params))
    save_fixture("mtt_tm", repo="GeorgeCazenavette/mtt-distillation", ref=args.ref,
                 commit=args.commit,
                 script=__file__, images=image_syn.detach().numpy(),
                 labels=label_syn.numpy().astype(np.int32), start=start.numpy(),
                 target=target.numpy(), syn_lr=np.float32(SYN_LR),
                 syn_steps=np.int32(SYN_STEPS), batch_syn=np.int32(BATCH_SYN),
                 chunks=chunks, loss=np.float32(grand_loss.item()),
                 grad_images=image_syn.grad.numpy(),
                 grad_syn_lr=np.float32(syn_lr.grad.item()),
                 num_params=np.int32(num_params))


if __name__ == "__main__":
    main()
