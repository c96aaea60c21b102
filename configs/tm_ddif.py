"""TM with DDiF (one SIREN neural field per synthetic instance). The main command:

    python launch/distill.py --config=configs/tm_ddif.py

Embedded default: digits at 16x16x1, ConvNetD2W32, IPC 1 -> SIREN width 6, 2 sine layers
(67 floats per field), floor(1 x 256 / 67) = 3 fields per class; warm-up of all 30 fields
at once; experts built if missing. Offline on 2 CPU cores in under 10 minutes; expected
result in README.md (final-epoch accuracy, mean +- std over 5 networks).

Published settings (REFERENCE.md, DDiF ICLR 2025; reported CIFAR-10 66.5 / 74.0 / 77.5,
CIFAR-100 42.1 / 46.0 / 49.9, ImageNette-128 IPC 1 72.0):

    python launch/distill.py --config=configs/tm_ddif.py:cifar10,ipc=1    # width 6, 37 fields/class
    python launch/distill.py --config=configs/tm_ddif.py:cifar10,ipc=10   # width 6, 379 fields/class
    python launch/distill.py --config=configs/tm_ddif.py:cifar10,ipc=50   # width 20, 282 fields/class
    python launch/distill.py --config=configs/tm_ddif.py:cifar100,ipc=10  # width 15
    python launch/distill.py --config=configs/tm_ddif.py:imagenette,ipc=1 # 3 layers, w 20, w0 40

The CIFAR field learning rate (Adam lr_nf) is not published; 1e-4 (the ImageNette value)
is the default here. Warm-up: 5000 Adam steps at lr 5e-4 in the paper (a GPU job).
Evaluate a DDiF set at another resolution:
    python launch/evaluate.py --synthetic=workdirs/tm_ddif-default/synthetic.msgpack --resolution=32
"""
from jaxdd import config as C
from jaxdd.param import ddif

# (dataset, ipc) -> (syn_steps, max_start_epoch); field sizes: jaxdd.config.DDIF_FIELDS
TM = {
    ("cifar10", 1): (60, 10), ("cifar10", 10): (60, 10), ("cifar10", 50): (60, 40),
    ("cifar100", 1): (60, 20), ("cifar100", 10): (60, 20), ("cifar100", 50): (60, 40),
    ("imagenette", 1): (20, 10), ("imagenette", 10): (20, 10), ("imagenette", 50): (20, 10),
}


def get_config(arg=None):
    dataset, overrides = C.parse_arg(arg)
    ipc = int(overrides.get("ipc", 1))
    cfg = C.base_config(dataset, ipc)
    cfg.param = ddif.default_config()
    cfg.param.name = "ddif"
    cfg.param.ipc = ipc
    cfg.opt.syn = C.ml_collections.ConfigDict(dict(name="adam", lr=1e-4))
    cfg.opt.lr.min_syn_lr = 1e-3  # FreD/DDiF clip syn_lr at >= 1e-3
    if dataset == "digits":
        C.digits_tm(cfg)
        cfg.param.width = 6
        cfg.param.warmup_steps = 1000
        cfg.opt.syn.lr = 1e-3
    else:
        C.apply_mtt(cfg, dataset, ipc)
        C.apply_ddif_fields(cfg, dataset, ipc)
        steps, max_start = TM.get((dataset, ipc), TM[("cifar10", 1)])
        cfg.param.w0_initial = 30.0
        cfg.param.warmup_steps = 5000
        cfg.objective.syn_steps, cfg.objective.max_start_epoch = steps, max_start
        cfg.objective.expert_epochs = 2
        cfg.opt.lr.lr, cfg.opt.lr.init = 1e-5, 1e-2
        cfg.opt.syn.lr = 1e-4  # Adam lr_nf (apply_mtt set the pixel lr)
        cfg.iterations = 5000
        if dataset == "imagenette":
            # decode only syn_steps x batch_syn random fields per iteration (authors' code)
            cfg.objective.batch_syn = 102
            cfg.decode_subset = cfg.objective.syn_steps * cfg.objective.batch_syn
    return C.apply_overrides(cfg, overrides)
