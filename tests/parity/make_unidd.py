"""Parity fixture for UniDD / CFM statistics and filter losses (tests/test_parity_unidd.py).

    python tests/parity/make_unidd.py --ref=<checkout of bdy9527/UniDD>

Runs the authors' `hook.ConvFeatureHook` (bdy9527/UniDD hook.py) on tiny seeded conv-input
features (C = 4 channels, 3x3 maps, 3 classes), exactly as synthesis_small.py drives it:

1. real statistics (synthesis_small.py 157-178, `set_hook(pre=True)`): batches of real
   features in order (sizes 4, 4, 3: the last one short, like a DataLoader without
   drop_last) with `onehot_labels` / `pseudo_labels` set before each forward; the hook's
   running_cov / running_mean / running_class_mean (data_number = 11 here);
2. synthesis (synthesis_small.py 186-257, `set_hook(pre=False)`): IPC = 2 batches of one
   synthetic image per class; before batch b (1-based `batch_id`) beta = beta_scheduler[b-1]
   = 0.1 (1 + cos(pi (b-1) / IPC)) / 2 (synthesis_small.py 91-92, re-stated here); one forward
   per batch, `r_feature` (= filter loss + signal loss) and its gradient w.r.t. the synthetic
   features (autograd); after each batch `ema_update()` (EMU) from that forward's statistics.
   Both filters (HFM, LFM) x both signals ('mean', the public README; 'class', the paper).

The hook is attached to a throw-away nn.Conv2d (feat='input': it reads the conv's input,
which is what synthesis_small.py hooks on every Conv2d not named 'downsample'). The hook's
dataset tables are bypassed by setting num_classes / data_number after construction (the
hook reads them only in pre_hook_fn's normalization). The authors' files are never modified.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity import common  # noqa: E402

C, HW, K = 4, 3, 3
REAL_BATCHES = (4, 4, 3)
IPC, BETA = 2, 0.1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="checkout of bdy9527/UniDD")
    common.add_commit_arg(ap, "bdy9527/UniDD")
    args = ap.parse_args()
    common.add_reference_path(args.ref)
    import torch
    import torch.nn.functional as F
    from hook import ConvFeatureHook

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    out = {}
    # real features: a non-zero mean per batch, so the average of per-batch covariances
    # (the hook) and the covariance of all positions differ visibly
    real = [torch.randn(n, C, HW, HW, generator=g) * (0.5 + torch.rand(1, C, 1, 1, generator=g))
            + 0.7 * b for b, n in enumerate(REAL_BATCHES)]
    real_y = [torch.randint(0, K, (n,), generator=g) for n in REAL_BATCHES]
    out["real_feats"] = torch.cat(real).numpy()
    out["real_labels"] = torch.cat(real_y).numpy()
    out["real_batches"] = np.array(REAL_BATCHES)
    syn = [torch.randn(K, C, HW, HW, generator=g) * 1.3 + 0.2 for _ in range(IPC)]
    out["syn_feats"] = torch.stack(syn).numpy()  # (IPC, K, C, HW, HW)
    # synthesis_small.py 91-92 (args.cos): beta per batch
    betas = [BETA * (1. + np.cos(np.pi * ipc / IPC)) / 2 for ipc in range(IPC)]
    out["betas"] = np.array(betas, np.float64)
    n_real = sum(REAL_BATCHES)

    with tempfile.TemporaryDirectory() as tmp:
        for filt in ("HFM", "LFM"):
            for sig in ("mean", "class"):
                conv = torch.nn.Conv2d(C, 2, 3, padding=1)
                hook = ConvFeatureHook(conv, name=f"tiny_{filt}_{sig}", save_path=tmp,
                                       dataset="CIFAR-10", filter=filt, signal=sig,
                                       feat="input", ema=True, device="cpu")
                hook.num_classes, hook.data_number = K, n_real
                hook.set_hook(pre=True)
                with torch.no_grad():  # synthesis_small.py 164-174
                    for x, y in zip(real, real_y):
                        onehot = F.one_hot(y, num_classes=K).float()
                        hook.onehot_labels = onehot
                        hook.pseudo_labels = onehot
                        conv(x)
                tag = f"{filt}_{sig}"
                if filt == "HFM" and sig == "mean":  # statistics do not depend on the mode
                    out["running_cov"] = hook.running_cov.numpy()
                    out["running_mean"] = hook.running_mean.numpy()
                    out["running_class_mean"] = hook.running_class_mean.numpy()
                hook.set_hook(pre=False)
                batch_id = 0.
                for b in range(IPC):  # synthesis_small.py 186-257
                    batch_id += 1.
                    hook.beta = betas[b]
                    hook.batch_id = batch_id
                    x = syn[b].clone().requires_grad_(True)
                    hook.onehot_labels = F.one_hot(torch.arange(K), num_classes=K).float()
                    conv(x)
                    r = hook.r_feature
                    r.backward()
                    out[f"{tag}/r_feature/{b}"] = np.float32(r.item())
                    out[f"{tag}/grad/{b}"] = x.grad.numpy()
                    out[f"{tag}/batch_cov/{b}"] = hook.batch_cov.numpy()
                    sig_b = hook.batch_mean if sig == "mean" else hook.batch_class_mean
                    out[f"{tag}/batch_signal/{b}"] = sig_b.numpy()
                    hook.ema_update()
                    out[f"{tag}/ema_cov/{b}"] = hook.cov.numpy()
                hook.close()
    # torch.norm(M, 2) of a matrix (the hook's signal loss) is the norm of the flattened M
    m = torch.randn(C, K, generator=g)
    assert math.isclose(torch.norm(m, 2).item(), torch.linalg.norm(m.reshape(-1)).item(),
                        rel_tol=1e-6)
    common.save_fixture("unidd", repo="bdy9527/UniDD", ref=args.ref, commit=args.commit,
                        script=__file__, **out)


if __name__ == "__main__":
    main()
