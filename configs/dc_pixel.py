"""DC (gradient matching with siamese DSA, Zhao et al.) with the pixel parameterization.

Embedded default (offline, 2 CPU cores): digits at 16x16x1, ConvNetD2W32, IPC 1,
300 iterations with 64 real images per class (IPC 1: outer/inner loop 1/1, a
fresh network every iteration), then the evaluation protocol (5 networks x 1000 epochs)
and the random-real baseline:

    python launch/distill.py --config=configs/dc_pixel.py

Expected: test accuracy 88.6 +- 0.6 % (final epoch, mean +- std over 5 networks; random real
at IPC 1: 68.0 +- 5.1 %), about 3 minutes wall on 2 shared CPU cores (seed 0; measured
2026-12-02, docs/results.md "DM and DC with every parameterization").

Published settings (DC ICLR 2021 / DSA ICML 2021, the authors' main.py): 1000 DC
iterations of `outer_loop` synthetic updates each (outer/inner = 1/1, 10/50, 50/10 for IPC
1/10/50), i.e. 1000 x outer_loop iterations of the jaxdd loop; batch_real 256 per class,
SGD(lr_img 0.1, momentum 0.5) on the pixels, the matched network trained with SGD lr_net
0.01, DSA siamese, evaluation lr 0.01. Reported (DSA) CIFAR-10 28.8 / 52.1 / 60.6:

    python launch/distill.py --config=configs/dc_pixel.py:cifar10,ipc=10
    python launch/distill.py --config=configs/dc_pixel.py:cifar10,ipc=50

DC's own default init is Gaussian noise (`--config.param.init=noise`); real init (the
jaxdd pixel default) gives similar results according to the authors.

Any other (dataset, ipc) -- another IPC, MNIST, an npz file -- gets a derived setting, NOT a
published one (cfg.source "derived, not published: ..."; jaxdd.config.derive): the DC recipe
unchanged; DC's loops of the nearest IPC get_loops defines where it defines none.
"""
from jaxdd import config as C

# config strings of the published settings (convention: jaxdd/published/__init__.py)
VARIANTS = ([f"cifar10,ipc={i}" for i in (1, 10, 50)]
            + [f"cifar100,ipc={i}" for i in (1, 10)])


def get_config(arg=None):  # the shared recipe + its hooks: jaxdd.config.matching_config
    return C.matching_config("dc", "pixel", arg)
