"""DM's published recipe (distribution matching: Zhao & Bilen, WACV 2023), transcribed from the
DatasetCondensation main_DM.py argparse defaults (the same values in FreD's and DDiF's DM/
code: 20000 iterations, batch_real 256 real images per class, the pixels with SGD(lr_img 1,
momentum 0.5), evaluation lr 0.01).

  RECIPE     those defaults.
  REPORTED   the (dataset, ipc) settings whose results the DM paper reports with this recipe
             and jaxdd encodes (configs/dm_pixel.py VARIANTS).
"""
from __future__ import annotations

RECIPE = dict(iterations=20000, batch_real=256, lr_img=1.0, momentum_img=0.5, eval_lr=0.01)

REPORTED = tuple((d, i) for d in ("cifar10", "cifar100") for i in (1, 10, 50))

SOURCE = ("DM paper (WACV 2023) / DatasetCondensation main_DM.py defaults "
          "(not checked by a parity fixture)")
