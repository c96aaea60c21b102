"""TM (MTT) with the pixel parameterization.

Embedded default (offline, 2 CPU cores, the whole run -- experts if missing, distillation,
evaluation -- in under 10 minutes):

    python launch/distill.py --config=configs/tm_pixel.py

Published settings (MTT, jaxdd.published.mtt: every row of the authors' readme.md
table/commands that jaxdd can load; reported CIFAR-10 IPC 1/10/50 46.3 / 65.3 / 71.6,
CIFAR-100 24.3 / 40.1 / 47.7; 5000 iterations; needs the prepared tfds data and 100
experts x 50 epochs). VARIANTS lists them; an unpublished (dataset, ipc) raises:

    python launch/distill.py --config=configs/tm_pixel.py:cifar10,ipc=1
    python launch/distill.py --config=configs/tm_pixel.py:cifar10,ipc=10
    python launch/distill.py --config=configs/tm_pixel.py:cifar100,ipc=50
    python launch/distill.py --config=configs/tm_pixel.py:imagenette,ipc=1

ImageNette follows MTT's readme.md ImageNet-subset command (ConvNetD5, 128 px, lr_img 1000,
lr_lr 1e-6); the authors' subsets squash ImageNet images to 128x128 (see jaxdd.data).

Any field can be overridden in the config string (`...:digits,iterations=100`) or with
absl's `--config.field=value`.
"""
from jaxdd import config as C
from jaxdd.published import mtt

# config strings of the published settings (convention: jaxdd/published/__init__.py)
VARIANTS = [f"{d},ipc={i}" for d, i in mtt.TABLE if d in C.DATASETS]


def get_config(arg=None):
    cfg, dataset, ipc, overrides = C.start("pixel", arg)  # base_config + the pixel block
    if dataset == "digits":
        C.digits_tm(cfg)
        cfg.source = "jaxdd embedded CPU setting (digits)"
    else:
        C.apply_mtt(cfg, dataset, ipc)  # raises for a (dataset, ipc) MTT did not publish
    return C.apply_overrides(cfg, overrides)
