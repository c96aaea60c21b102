"""DM (distribution matching) with FreD (masked DCT coefficients, explained-variance mask).

Embedded default (offline, 2 CPU cores): digits at 16x16x1, ConvNetD2W32, IPC 1, k = 64 of
256 DCT positions -> 4 instances per class, 64 real images per class per step;
500 DM iterations, then 5 networks x 1000 epochs and the random-real baseline.
(The CIFAR ratio k/HW = 64/1024 would give k = 16 on digits: 16 blurry instances per
class, 81% vs 95% with k = 64 in a 300-iteration calibration, 3 nets x 300 epochs.)

    python launch/distill.py --config=configs/dm_fred.py

Expected: test accuracy 94.3 +- 0.6 % (final epoch, mean +- std over 5 networks; random real
at IPC 1: 68.0 +- 5.1 %), about 2 minutes wall on 2 shared CPU cores (seed 0; measured
2026-12-02, docs/results.md "DM and DC with every parameterization").

Published settings (sdh0818/FreD @ 9f35a7a, in jaxdd/published/fred.py, checked by
tests/test_parity_fred_tables.py): CIFAR-10 (IPC 1, 2, 10, 11, 50, 51) from
DM/scripts/run_DM_FreD.sh -- k = 64, SGD(lr_freq 1e6, momentum 0.5) on the UNNORMALIZED DCT,
20000 iterations, batch_real 256, DSA, evaluation lr 0.01 -- and ImageNette 128 px (IPC 1,
2) from ImageNet-abcde/scripts/run_DM_FreD.sh -- k = 2048, lr_freq 1e6, 1000 iterations,
evaluation lr 0.001. The scripts publish k and lr_freq for their example settings only
(CIFAR-10 IPC 2, ImageNet IPC 1); the other rows reuse them and say so in cfg.source.

    python launch/distill.py --config=configs/dm_fred.py:cifar10,ipc=2
    python launch/distill.py --config=configs/dm_fred.py:imagenette,ipc=1

The digits lr 1.024e5 is jaxdd.config.matching.FRED_DIGITS_LR['dm'] (the orthonormal lr 100
it was tuned with, for the authors' unnormalized DCT that every variant uses).

Any other (dataset, ipc) -- another IPC, MNIST, an npz file -- gets a derived setting, NOT a
published one (cfg.source "derived, not published: ..."; jaxdd.config.derive): the nearest
FreD DM row of the same image shape, else the DM recipe with k = H W / 4 and lr_freq = the
digits-tuned orthonormal lr x 4 H W.

3D MNIST (sdh0818/FreD 3D-MNIST/, jaxdd.published.fred.DM_3D): 16^3 voxels, Conv3DNet width
64, k = 512, lr_freq 1e6 on the unnormalized 3-D DCT, 1000 iterations, no augmentation,
500 evaluation epochs (IPC 1 the script's; 10 / 50 reuse its fields, labelled):

    python launch/distill.py --config=configs/dm_fred.py:3dmnist
"""
from jaxdd import config as C
from jaxdd.published import fred as published

# the published settings this config encodes (jaxdd.published convention)
VARIANTS = [f"{d},ipc={i}" for d, i in published.DM if d in C.DATASETS]
# 3D MNIST (FreD 3D-MNIST/, jaxdd.published.fred.DM_3D)
VARIANTS += [f"{d},ipc={i}" for d, i in published.DM_3D]


def get_config(arg=None):  # the shared recipe + its hooks: jaxdd.config.matching_config
    return C.matching_config("dm", "fred", arg)
