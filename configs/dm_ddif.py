"""DM (distribution matching) with DDiF (one SIREN neural field per synthetic instance).

Embedded default (offline, 2 CPU cores): digits at 16x16x1, ConvNetD2W32, IPC 1, SIREN
width 6 with 2 sine layers (67 floats per field) -> 3 fields per class, warm-up 1000 Adam
steps; EMBEDDED_ITERS DM iterations with 64 real images per class, then 5 networks x 1000
epochs and the random-real baseline:

    python launch/distill.py --config=configs/dm_ddif.py

Expected: test accuracy 90.6 +- 1.0 % (final epoch, mean +- std over 5 networks; random real
at IPC 1: 69.4 +- 5.2 %), about 3 minutes wall on 2 shared CPU cores (seed 0).

Published settings (aailab-kaist/DDiF DM/hyper_params.py field sizes, main_DM.py defaults
and DM/scripts/run_DDiF.sh; jaxdd.published.ddif gives the source of every value):
Adam lr_nf 5e-5, 20000 iterations, batch_real 256, batch_syn 0 (all fields), no ZCA,
warm-up 5000 steps at 5e-4, evaluation every 2000 iterations (1000 epochs, 5 networks).
The authors' script is the ImageNette IPC 1 run; the CIFAR rows use their field table with
the same script values. VARIANTS lists them; an unpublished (dataset, ipc) raises:

    python launch/distill.py --config=configs/dm_ddif.py:imagenette,ipc=1
    python launch/distill.py --config=configs/dm_ddif.py:cifar10,ipc=10
"""
from jaxdd import config as C
from jaxdd.objective import dm
from jaxdd.param import ddif
from jaxdd.published import ddif as P

EMBEDDED_ITERS = 500

# config strings of the published settings (convention: jaxdd/published/__init__.py)
VARIANTS = [f"{d},ipc={i}" for d, i in P.FIELDS_DM if d in C.DATASETS]


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
        cfg.source = "jaxdd embedded CPU setting (digits)"
    else:
        P.apply_fields(cfg, dataset, ipc, "dm")  # raises for an unpublished (dataset, ipc)
        r = P.DM_RUN
        cfg.iterations = r["iterations"]
        cfg.opt.syn.lr = r["lr_nf"]
        cfg.opt.lr.init = r["lr_net"]
        cfg.objective.batch_real = r["batch_real"]
        cfg.decode_subset = r["batch_syn"]  # 0: every field every iteration
        cfg.dataset.zca = r["zca"]
        cfg.eval.every, cfg.eval.epochs = r["eval_every"], r["eval_epochs"]
        cfg.eval.num_nets = cfg.eval.final_nets = r["num_eval"]
        cfg.checkpoint_every = 1000
        cfg.source = ("DDiF DM/hyper_params.py + main_DM.py defaults + "
                      "DM/scripts/run_DDiF.sh (lr_nf 5e-5)")
    return C.apply_overrides(cfg, overrides)
