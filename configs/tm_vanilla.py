"""TM (MTT) with the pixel parameterization.

Embedded default (offline, 2 CPU cores, the whole run -- experts if missing, distillation,
evaluation -- in under 10 minutes):

    python launch/distill.py --config=configs/tm_vanilla.py

Published settings (REFERENCE.md, MTT; CIFAR-10 IPC 1/10/50 reported 46.3 / 65.3 / 71.6,
CIFAR-100 IPC 1/10/50 24.3 / 40.1 / 47.7; 5000 iterations; needs the prepared tfds data
and 100 experts x 50 epochs):

    python launch/distill.py --config=configs/tm_vanilla.py:cifar10,ipc=1
    python launch/distill.py --config=configs/tm_vanilla.py:cifar10,ipc=10
    python launch/distill.py --config=configs/tm_vanilla.py:cifar100,ipc=50
    python launch/distill.py --config=configs/tm_vanilla.py:imagenette,ipc=1

Any field can be overridden in the config string (`...:digits,iterations=100`) or with
absl's `--config.field=value`.
"""
from jaxdd import config as C
from jaxdd.param import pixel


def get_config(arg=None):
    dataset, overrides = C.parse_arg(arg)
    ipc = int(overrides.get("ipc", 1))
    cfg = C.base_config(dataset, ipc)
    cfg.param = pixel.default_config()
    cfg.param.name = "pixel"
    cfg.param.ipc = ipc
    if dataset == "digits":
        C.digits_tm(cfg)
    else:
        C.apply_mtt(cfg, dataset, ipc)
        if dataset == "imagenette":  # MTT ImageNette-128 IPC 1 (DDiF's vanilla row 51.4)
            cfg.objective.syn_steps, cfg.objective.max_start_epoch = 20, 10
            cfg.opt.syn.lr, cfg.opt.lr.lr, cfg.opt.lr.init = 1e4, 1e-4, 0.01
    return C.apply_overrides(cfg, overrides)
