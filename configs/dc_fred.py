"""DC (gradient matching; DSA as the authors use it) with FreD (masked DCT coefficients).

Embedded default (offline, 2 CPU cores): digits at 16x16x1, ConvNetD2W32, IPC 1, k = 64 of
256 DCT positions -> 4 instances per class, 64 real images per class per step;
300 iterations (IPC 1: a fresh network every iteration), then 5 networks x 1000
epochs and the random-real baseline. (The published DC ratio k/HW = 32/1024 would give k =
8 on digits: 32 very blurry instances per class, 43% at init and 39% after 200 iterations
vs 84% -> 92% with k = 64 in a calibration, 3 nets x 300 epochs.)

    python launch/distill.py --config=configs/dc_fred.py

Expected: test accuracy 94.2 +- 0.5 % (final epoch, mean +- std over 5 networks; random real
at IPC 1: 68.0 +- 5.1 %), about 4 minutes wall on 2 shared CPU cores (seed 0; measured
2026-12-02, docs/results.md "DM and DC with every parameterization").

Published settings (sdh0818/FreD @ 9f35a7a, in jaxdd/published/fred.py, checked by
tests/test_parity_fred_tables.py): CIFAR-10 (IPC 1, 2, 10, 11, 50, 51) from
DC/scripts/run_DC_FreD.sh -- k = 32, SGD(lr_freq 1e3, momentum 0.5) on the UNNORMALIZED DCT,
1000 DC iterations (= 1000 x outer_loop jaxdd iterations), batch_real 256, matched network
lr 0.01, and NO augmentation: main_DC_FreD.py sets dsa only for --method DSA (default DC),
so distillation runs without DSA and the evaluation without augmentation for 300 epochs
(main_DC_FreD.py:217-227); ImageNette 128 px (IPC 1, 2) from
ImageNet-abcde/scripts/run_DC_FreD.sh -- k = 2048, lr_freq 1e5, DSA on, evaluation lr 0.001.
The scripts publish k and lr_freq for their example settings only (CIFAR-10 IPC 2,
ImageNet IPC 1); the other rows reuse them and say so in cfg.source.

    python launch/distill.py --config=configs/dc_fred.py:cifar10,ipc=2
    python launch/distill.py --config=configs/dc_fred.py:imagenette,ipc=1

The digits lr 1024 is jaxdd.config.matching.FRED_DIGITS_LR['dc'] (the orthonormal lr 1.0
it was tuned with, for the authors' unnormalized DCT that every variant uses).

Any other (dataset, ipc) -- another IPC, MNIST, an npz file -- gets a derived setting, NOT a
published one (cfg.source "derived, not published: ..."; jaxdd.config.derive): the nearest
FreD DC row of the same image shape, else the DC recipe with k = H W / 4 and lr_freq = the
digits-tuned orthonormal lr x 4 H W; DC's loops of the nearest IPC get_loops defines where
it defines none.
"""
from jaxdd import config as C
from jaxdd.published import fred as published

# the published settings this config encodes (jaxdd.published convention)
VARIANTS = [f"{d},ipc={i}" for d, i in published.DC if d in C.DATASETS]


def get_config(arg=None):  # the shared recipe + its hooks: jaxdd.config.matching_config
    return C.matching_config("dc", "fred", arg)
