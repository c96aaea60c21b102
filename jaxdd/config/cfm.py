"""CFM configs: configs/cfm_{pixel,fred,ddif,nsd}.py are `cfm_config(param, arg)`: CFM through
the generic loop (jaxdd.objective.cfm; the stages around it: jaxdd.teacher).

UniDD publishes CFM with pixels on CIFAR-10 / CIFAR-100 (IPC 10 / 50: `REPORTED`); every
other combination is derived (cfg.source "derived, not published: ..."): UniDD's recipe of
the same image shape where there is one (the CIFAR recipe for any 32 x 32 x 3 data, with the
parameterization's optimizer of `CFM_PARAMS`), else the digits recipe with the
parameterization's fields sized for the budget (jaxdd.config.derive).
"""
from __future__ import annotations

import copy

import ml_collections

from jaxdd.config import derive
from jaxdd.config.base import EMBEDDED, derived, start
from jaxdd.config.datasets import info
from jaxdd.config.parse import apply_overrides

SOURCE = "UniDD (bdy9527/UniDD @ 4afb992) synthesis_small.py / README commands"
# the published (dataset, ipc) of CFM with pixels (configs/cfm_pixel.py VARIANTS)
REPORTED = tuple((d, i) for d in ("cifar10", "cifar100") for i in (10, 50))
# UniDD relabel batch sizes (the public code's commands); digits uses CIFAR-10's
CFM_EVAL_BATCH = {("cifar10", 1): 10, ("cifar10", 10): 50, ("cifar10", 50): 100,
                  ("cifar100", 1): 20, ("cifar100", 10): 100, ("cifar100", 50): 200}
SQUEEZE_EPOCHS = {"digits": 30, "cifar10": 200, "cifar100": 100}
# the synthetic optimizer per parameterization: UniDD's Adam(0.25, (0.5, 0.9)) with a cosine
# per class-batch on per-instance parameters (pixels; FreD's orthonormal DCT coefficients);
# smaller constant-lr Adam for DDiF's fields and NSD's shared kernels (jaxdd choices: no
# published CFM setting for them)
CFM_PARAMS = {
    # pixels start from the first IPC images of each class (UniDD's get_one_ipc)
    "pixel": dict(opt=dict(lr=0.25, cosine=True, per_instance=True), param={"init": "first"}),
    "fred": dict(opt=dict(lr=0.25, cosine=True, per_instance=True), param={"norm": "ortho"}),
    "ddif": dict(opt=dict(lr=1e-3, cosine=False, per_instance=True), param={}),
    "nsd": dict(opt=dict(lr=1e-2, cosine=False, per_instance=False), param={}),
}
# cfg.objective of CFM (UniDD's recover settings), as plain data: teacher, squeeze (its
# training), statistics (the real pass), the recover filter / curriculum / augmentation.
# tests/test_config_data.py checks it equals jaxdd.objective.cfm.default_config().
OBJECTIVE = dict(
    name="cfm",
    teacher=dict(name="ConvNetD3BN", overrides={}),
    squeeze=dict(dir="", seed=0, epochs=200, batch_size=128, lr=0.1, momentum=0.9,
                 weight_decay=5e-4, crop_pad=4, flip=True, checkpoint_every=10),
    statistics=dict(psi="batch", batch_size=128, exclude=("shortcut",)),
    filter="hfm", beta=0.1, curriculum=True, signal="mean", ema=True, eta=0.1,
    rrc_scale=(0.08, 1.0), rrc_ratio=(3.0 / 4.0, 4.0 / 3.0), flip=True, jitter=4,
    per_sample_aug=False)
# the digits setting of the parameterizations' shape-bound fields (cfm on digits)
_DIGITS_FIELDS = {"fred": dict(k=64), "ddif": dict(width=6, warmup_steps=1000),
                  "nsd": dict(t3=4, t4=4)}


def objective_block() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(copy.deepcopy(OBJECTIVE))


def _derived_fields(cfg, param, ipc, shape) -> str:
    """The digits fields of `param` re-derived for `shape` (jaxdd.config.derive)."""
    if param == "fred":
        cfg.param.k = derive.fred_k(shape)
        return f"FreD k = HW/4 = {cfg.param.k}"
    if param == "ddif":
        cfg.param.warmup_steps = _DIGITS_FIELDS["ddif"]["warmup_steps"]
        return derive.ddif_digits_rule(cfg.param, ipc, shape)
    if param == "nsd":
        cfg.max_image_rms_ratio = 1e12  # as the digits setting (jaxdd.config.matching)
        return "NSD size rule"
    return ""


def cfm_config(param: str, arg: str | None = None):
    """The config of CFM through the generic loop for parameterization `param`
    (configs/cfm_{pixel,fred,ddif,nsd}.py; the config string as every config's).

    digits (default): teacher = student = ConvNetD2W32BN, 30 squeeze epochs, IPC 10,
    200 recover iterations per class-batch, 5 students x 300 relabel epochs; cifar10 /
    cifar100: UniDD's published recover / squeeze / relabel settings (ConvNetD3BN; arch=resnet18
    for ResNet18BN); other data: derived (module docstring). cfg.iterations = IPC x recover
    iterations (the class-batch curriculum: `jaxdd.objective.cfm`). Shortcuts: ipc, arch,
    filter, curriculum, beta, signal, recover_iterations, epochs (relabel).
    """
    if param not in CFM_PARAMS:
        raise ValueError(f"CFM configs exist for {sorted(CFM_PARAMS)}, got {param!r}")
    s = start(param, arg, default_ipc=10)
    cfg, dataset, ipc, ov = s.cfg, s.dataset, s.ipc, dict(s.overrides)
    arch = str(ov.pop("arch", "convnet")).lower()
    if arch not in ("convnet", "resnet18"):
        raise ValueError(f"arch must be convnet or resnet18, got {arch!r}")
    shape = info(dataset)["shape"]
    digits = dataset == "digits"
    # the recipe: UniDD's of the same image shape, else the digits one
    key = None if digits else derive.nearest(REPORTED, dataset, ipc)
    like = "digits" if digits or key is None else key[0]
    small = like == "digits"  # the digits recipe (small grayscale digits: no flips)
    per_batch = int(ov.pop("recover_iterations", 200 if small else 1000))
    short = {"filter": "objective.filter", "curriculum": "objective.curriculum",
             "beta": "objective.beta", "signal": "objective.signal", "epochs": "eval.epochs"}
    ov = {short.get(k, k): v for k, v in ov.items()}

    for k, v in CFM_PARAMS[param]["param"].items():
        cfg.param[k] = v
    if digits:
        cfg.source = EMBEDDED
        for k, v in _DIGITS_FIELDS.get(param, {}).items():  # the digits shape (k, width, t3/t4)
            cfg.param[k] = v
        if param == "nsd":
            cfg.max_image_rms_ratio = 1e12
    elif small:
        fields = _derived_fields(cfg, param, ipc, shape)
        cfg.source = derived(
            f"the digits CFM recipe (no UniDD setting of image shape "
            f"{derive.shape_of(dataset)})" + (f"; {fields}" if fields else ""))
    elif param == "pixel" and (dataset, ipc) in REPORTED:
        cfg.source = SOURCE
    else:
        how = f"UniDD's {like} recipe ({SOURCE})"
        if param != "pixel":
            how += f" with {param} (jaxdd's optimizer, CFM_PARAMS; UniDD publishes pixels only)"
        if (dataset, ipc) not in REPORTED:
            how += f" at {dataset} IPC {ipc}"
        cfg.source = derived(how)
    o = cfg.objective = objective_block()
    if digits:
        o.teacher.name = "ConvNetD2W32BN"
    elif arch == "resnet18":
        o.teacher.name = "ResNet18BN"
    else:
        o.teacher.name = "ConvNetD3BN" if not small else f"{info(dataset)['model']}BN"
    o.squeeze.epochs = SQUEEZE_EPOCHS[like]
    o.squeeze.crop_pad = 2 if small else 4
    o.squeeze.flip = o.flip = not small  # flipped digits are other digits
    o.jitter = 2 if small else 4
    cfg.model.name = o.teacher.name  # the relabel students have the teacher's architecture
    cfg.dsa_strategy = "none"  # CFM's own recover augmentation (objective.rrc_*, jitter)
    cfg.iterations = ipc * per_batch
    cfg.checkpoint_every = per_batch
    cfg.log_every = 50
    so = CFM_PARAMS[param]["opt"]
    cfg.opt.syn = ml_collections.ConfigDict(dict(
        name="adam", lr=so["lr"], b1=0.5, b2=0.9, per_instance=so["per_instance"],
        schedule="cosine" if so["cosine"] else "constant", decay_steps=per_batch))
    cfg.opt.lr.init = 0.0  # no learned student lr (soft-label relabel has its own)
    e = cfg.eval
    e.every = 0
    e.num_nets = e.final_nets = 5
    e.epochs = 300 if small else 1000
    e.batch_size = CFM_EVAL_BATCH.get(("cifar10" if small else like, ipc), 100)
    e.lr, e.weight_decay, e.temperature, e.cutmix_alpha = 1e-3, 1e-2, 20.0, 1.0
    e.rrc_scale = (0.08, 1.0)
    e.flip = not small
    e.schedule = "half_cosine"
    e.t2_scale = False
    e.random_real_baseline = False
    return apply_overrides(cfg, ov)
