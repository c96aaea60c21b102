"""TM (MTT) with the pixel parameterization.

Embedded default (offline, 2 CPU cores, the whole run -- experts if missing, distillation,
evaluation -- in under 10 minutes):

    python launch/distill.py --config=configs/tm_pixel.py

Published settings (MTT, jaxdd.published.mtt: every row of the authors' readme.md
table/commands that jaxdd can load; reported CIFAR-10 IPC 1/10/50 46.3 / 65.3 / 71.6,
CIFAR-100 24.3 / 40.1 / 47.7; 5000 iterations; needs the prepared tfds data and 100
experts x 50 epochs). VARIANTS lists them:

    python launch/distill.py --config=configs/tm_pixel.py:cifar10,ipc=1
    python launch/distill.py --config=configs/tm_pixel.py:cifar10,ipc=10
    python launch/distill.py --config=configs/tm_pixel.py:cifar100,ipc=50
    python launch/distill.py --config=configs/tm_pixel.py:imagenette,ipc=1

ImageNette follows MTT's readme.md ImageNet-subset command (ConvNetD5, 128 px, lr_img 1000,
lr_lr 1e-6); the authors' subsets squash ImageNet images to 128x128 (see jaxdd.data).

Any other (dataset, ipc) -- another IPC, MNIST, an npz file
(`configs/tm_pixel.py:/data/my.npz`) -- gets a derived setting, NOT a published one
(cfg.source says "derived, not published: ..."): MTT's nearest row of the same image shape
(same dataset first, then the nearest IPC), else the digits TM hyperparameters with MTT's
recipe (jaxdd.config.derive).

Any field can be overridden in the config string (`...:digits,iterations=100`) or with
absl's `--config.field=value`.
"""
from jaxdd import config as C
from jaxdd.published import mtt

# config strings of the published settings (convention: jaxdd/published/__init__.py)
VARIANTS = [f"{d},ipc={i}" for d, i in mtt.TABLE if d in C.DATASETS]


def get_config(arg=None):  # the TM builder: jaxdd.config.tm_config
    return C.tm_config("pixel", arg)
