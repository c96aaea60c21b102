"""DM (distribution matching) with DDiF (one SIREN neural field per synthetic instance).

Embedded default (offline, 2 CPU cores): digits at 16x16x1, ConvNetD2W32, IPC 1, SIREN
width 6 with 2 sine layers (67 floats per field) -> 3 fields per class, warm-up 1000 Adam
steps; EMBEDDED_ITERS DM iterations with 64 real images per class, then 5 networks x 1000
epochs and the random-real baseline:

    python launch/distill.py --config=configs/dm_ddif.py

Expected: test accuracy 90.6 +- 1.0 % (final epoch, mean +- std over 5 networks; random real
at IPC 1: 69.4 +- 5.2 %), about 3 minutes wall on 2 shared CPU cores (seed 0).

Published settings (DDiF ICLR 2025 / REFERENCE.md: DM with Adam lr_nf 5e-5 (ImageNette);
the DM recipe: 20000 iterations, batch_real 256; field sizes as in configs/tm_ddif.py;
warm-up 5000 steps):

    python launch/distill.py --config=configs/dm_ddif.py:imagenette,ipc=1
    python launch/distill.py --config=configs/dm_ddif.py:cifar10,ipc=10
"""
from jaxdd import config as C
from jaxdd.objective import dm
from jaxdd.param import ddif

EMBEDDED_ITERS = 500


def get_config(arg=None):
    dataset, overrides = C.parse_arg(arg)
    ipc = int(overrides.get("ipc", 1))
    cfg = C.base_config(dataset, ipc)
    cfg.param = ddif.default_config()
    cfg.param.name = "ddif"
    cfg.param.ipc = ipc
    cfg.objective = dm.default_config()
    cfg.opt.syn = C.ml_collections.ConfigDict(dict(name="adam", lr=5e-5))  # lr_nf
    cfg.opt.lr.init = 0.01  # evaluation lr (lr_net); not learned by DM
    if dataset == "digits":
        cfg.iterations = EMBEDDED_ITERS
        cfg.checkpoint_every, cfg.log_every = 100, 25
        cfg.objective.batch_real = 64
        cfg.param.width = 6
        cfg.param.warmup_steps = 1000
        cfg.opt.syn.lr = 1e-3
    else:
        C.apply_ddif_fields(cfg, dataset, ipc)
        cfg.param.warmup_steps = 5000
        cfg.iterations = 20000
        cfg.checkpoint_every = 1000
    return C.apply_overrides(cfg, overrides)
