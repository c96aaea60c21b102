"""DM (distribution matching, Zhao & Bilen) with the pixel parameterization.

Embedded default (offline, 2 CPU cores): digits at 16x16x1, ConvNetD2W32, IPC 1,
500 iterations with 64 real images per class, then the evaluation protocol (5
networks x 1000 epochs) and the random-real baseline:

    python launch/distill.py --config=configs/dm_pixel.py

Expected: test accuracy 89.9 +- 1.0 % (final epoch, mean +- std over 5 networks; random real
at IPC 1: 68.0 +- 5.1 %), about 1 minute wall on 2 shared CPU cores (seed 0; measured
2026-12-02, docs/results.md "DM and DC with every parameterization").

Published settings (DM, WACV 2023; jaxdd.published.dm): 20000 iterations, batch_real 256 per
class, SGD(lr_img 1, momentum 0.5) on the pixels, real init, DSA (siamese, one transform
per class), fresh ConvNet every iteration, evaluation lr 0.01. Reported CIFAR-10
26.0 / 48.9 / 63.0 (IPC 1 / 10 / 50), CIFAR-100 11.4 / 29.7 / 43.6:

    python launch/distill.py --config=configs/dm_pixel.py:cifar10,ipc=10
    python launch/distill.py --config=configs/dm_pixel.py:cifar100,ipc=50

Any field can be overridden in the config string (`...:digits,iterations=100`).

Any other (dataset, ipc) -- another IPC, MNIST, an npz file -- gets a derived setting, NOT a
published one (cfg.source "derived, not published: ..."; jaxdd.config.derive): the DM recipe
unchanged.
"""
from jaxdd import config as C

# config strings of the published settings (convention: jaxdd/published/__init__.py)
VARIANTS = [f"{d},ipc={i}" for d in ("cifar10", "cifar100") for i in (1, 10, 50)]


def get_config(arg=None):  # the shared recipe + its hooks: jaxdd.config.matching_config
    return C.matching_config("dm", "pixel", arg)
