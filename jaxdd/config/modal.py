"""Configs of video, audio and 3-D voxel data (issue 28): the published rows (DDiF on
MiniUCF / Mini Speech Commands / ModelNet-10 / ShapeNet, FreD on 3D MNIST) and the offline
embedded sets (digits_video, digits_voxel, synth_speech) for every parameterization, DM / DC
and TM (TM: an extension, no author runs TM on these data).

The builders (jaxdd.config.matching / .tm) call in here; nothing here imports an objective,
a loop or a parameterization module (configs are data).

The embedded sets are derived, not published: cfg.source says
"derived, not published: <how>". Their CPU budget lives in ONE place, `EMBEDDED_RUN` (per
set: iterations per objective, real images per class, evaluation epochs, network width)
and `EMBEDDED_FIELDS` (the DDiF field per set) -- the numbers to tune after measuring
(goal: each `python launch/distill.py --config=configs/<obj>_<param>.py:<set>` in under 5
minutes on 2 CPU cores, evaluation included).

Augmentation: none on every non-image modality (dsa_strategy 'none'): DDiF's 3D_Voxel/ and
Video/ code and FreD's 3D-MNIST/ code distill and evaluate without augmentation
(jaxdd.published.ddif_modal, .fred), and the audio row has no code.
"""
from __future__ import annotations

import ml_collections

from jaxdd.config import derive
from jaxdd.config.base import DIGITS_TM, apply_tm_hyper, derived
from jaxdd.config.datasets import EMBEDDED_MODAL, info
from jaxdd.published import ddif as _ddif
from jaxdd.published import ddif_modal as _dm
from jaxdd.published import fred as _fred
from jaxdd.published import lookup

# ---- the constants to tune (embedded sets, 2 CPU cores) ------------------------------------
# iterations per objective; batch_real: real instances per class per step; eval_epochs: the
# 5 evaluation networks' epochs; width: the network's width (the authors' Conv3DNet /
# ConvNet3D are 64-128 wide; narrower keeps the CPU budget, the same network distills and
# evaluates); warmup: DDiF warm-up steps.
EMBEDDED_RUN = {
    "digits_voxel": dict(iterations=dict(dm=200, dc=50, tm=40), batch_real=16,
                         eval_epochs=60, width=8, warmup=500),
    "digits_video": dict(iterations=dict(dm=200, dc=50, tm=40), batch_real=16,
                         eval_epochs=60, width=8, warmup=500),
    "synth_speech": dict(iterations=dict(dm=200, dc=100, tm=60), batch_real=64,
                         eval_epochs=300, width=32, warmup=1000),
}
# TM on the embedded sets (extension): a short buffer and short student unrolls
EMBEDDED_TM = dict(num_experts=4, max_start_epoch=3, expert_epochs=2, syn_steps=10,
                   batch_syn=20)
# DDiF fields of the embedded sets: the authors' field of the modality where it fits the
# IPC-1 budget (voxels: 3D_Voxel/hyper_params.py, 941 floats -> 4 fields per class of
# 16^3); video: the authors' 6 sine layers, w0 5, narrowed from width 40 (8483 floats > the
# 6144-float budget of 8x16x16x3) to 20 (2243 floats -> 2 fields per class); audio: the
# Mini Speech Commands field (jaxdd.published.ddif_modal.AUDIO_FIELD, 67 floats -> 15).
EMBEDDED_FIELDS = {
    "digits_voxel": dict(_dm.FIELDS_VOXEL[("modelnet10", 1)]),
    "digits_video": dict(_dm.FIELDS_VIDEO[("miniucf", 1)], layer_size=20),
    "synth_speech": dict(_dm.AUDIO_FIELD),
}
EMBEDDED_LR_NF = 1e-3  # Adam lr of the fields (the digits-tuned lr_nf; the authors' 1e-4)
# pixel / FreD / NSD synthetic-parameter optimizers: the digits-tuned ones
# (jaxdd.config.matching); FreD k and lr_freq by the digits rule for the grid
# (jaxdd.config.derive.fred_k / fred_lr), voxels at 3D MNIST's published ratio below.
FRED_VOXEL_K_RATIO = 8  # 3D-MNIST/scripts/run_DM_FreD.sh: k = 512 of 16^3 = 4096

SOURCE_EMBEDDED = "jaxdd embedded CPU setting ({name}, {modality})"


def is_embedded(dataset: str) -> bool:
    return dataset in EMBEDDED_MODAL


def modality(dataset: str) -> str:
    return info(dataset).get("modality", "image")


def no_augmentation(cfg, dataset: str):
    """dsa_strategy 'none' on every non-image modality (the authors' code augments none)."""
    if modality(dataset) != "image":
        cfg.dsa_strategy = "none"
    return cfg


def _set_fields(cfg, f: dict):
    p = cfg.param
    p.width, p.num_layers = int(f["layer_size"]), int(f["num_layers"])
    p.w0, p.w0_initial = float(f["w0"]), float(f["w0_initial"])
    p.dim_in, p.dim_out = int(f["dim_in"]), int(f["dim_out"])
    p.warmup_steps, p.warmup_lr = int(_ddif.WARMUP["steps"]), float(_ddif.WARMUP["lr"])


def _eval(cfg, epochs, every, num_nets, batch=256, lr=None):
    cfg.eval.epochs, cfg.eval.every = int(epochs), int(every)
    cfg.eval.num_nets = cfg.eval.final_nets = int(num_nets)
    cfg.eval.batch_size = int(batch)
    if lr is not None:
        cfg.opt.lr.init = float(lr)


def _model(cfg, name: str, width=None):
    cfg.model.name = name
    if width is not None:
        cfg.model.overrides.width = int(width)


# ---- published rows -----------------------------------------------------------------------
def ddif_setting(cfg, objective: str, dataset: str, ipc: int, outer: int) -> bool:
    """DDiF on a dataset of jaxdd.published.ddif_modal: its row (published), or -- for an
    IPC / objective without one -- the dataset's nearest row (derived, labelled).
    `outer`: DC's synthetic updates per DC iteration (1 for DM). False: not such a dataset."""
    rows = {k: (o, r) for o, t in _dm.TABLES.items() for k, r in t.items()}
    mine = [k for k in rows if k[0] == dataset]
    if not mine:
        return False
    table = _dm.TABLES[objective]
    published = (dataset, ipc) in table
    if published:
        key, r = (dataset, ipc), table[(dataset, ipc)]
    else:  # the nearest IPC of this dataset, this objective's table first
        key = min(mine, key=lambda k: (rows[k][0] != objective, abs(k[1] - ipc), k[1]))
        r = rows[key][1]
    _set_fields(cfg, r["fields"])
    shape = info(dataset)["shape"]
    dipc = int(r.get("dipc", 0) or 0)
    if dipc and not published:
        dipc = max(1, round(dipc * ipc / key[1]))
    cfg.param.fields_per_class = dipc
    if not dipc:
        derive.ddif_fit(cfg.param, ipc, shape)  # a narrower field only if none fits
    cfg.iterations = int(r["iterations"]) * outer
    cfg.opt.syn.lr = float(r["lr_nf"])
    cfg.objective.batch_real = int(r["batch_real"])
    if objective == "dc":
        cfg.objective.lr_net = float(r.get("lr_net", 0.01))
    # the authors' batch_syn is per class; jaxdd's decode_subset draws from all classes
    cfg.decode_subset = int(r["batch_syn"]) * int(info(dataset)["num_classes"])
    _eval(cfg, r["eval_epochs"], int(r["eval_every"]) * outer, r["num_eval"],
          r["batch_train"], r["eval_lr"])
    cfg.dsa_strategy = r["dsa_strategy"]
    _model(cfg, r["model"], r.get("width"))
    cfg.checkpoint_every = 500
    cfg.source = r["source"]
    if not published:
        o = objective.upper()
        cfg.source = derived(f"DDiF {rows[key][0].upper()} {derive.row_text(key)} row "
                             f"(field width {cfg.param.width}) with its run settings, for "
                             f"{o} at {dataset} IPC {ipc}")
    return True


def fred_setting(cfg, objective: str, dataset: str, ipc: int) -> bool:
    """FreD on 3D MNIST (jaxdd.published.fred.DM_3D) or a dataset of its shape (derived):
    k, SGD(lr_freq, mom_freq) on the unnormalized 3-D DCT, the main script's evaluation.
    False: no such row applies."""
    table = _fred.DM_3D
    published = objective == "dm" and (dataset, ipc) in table
    key = (dataset, ipc) if published else derive.nearest(table, dataset, ipc)
    if key is None or objective != "dm":
        return False
    s = lookup(table, *key, "FreD DM 3D MNIST (configs/dm_fred.py)")
    cfg.param.k = int(s["k"])
    cfg.param.norm = "none"
    cfg.opt.syn = ml_collections.ConfigDict(dict(name="sgd", lr=float(s["lr_freq"]),
                                                 momentum=float(s["mom_freq"])))
    cfg.iterations = int(s["iterations"])
    cfg.checkpoint_every = min(1000, int(s["iterations"]))
    cfg.objective.batch_real = int(s["batch_real"])
    _eval(cfg, s["eval_epochs"], s["eval_every"], s["num_eval"], s["batch_train"],
          s["eval_lr"])
    cfg.dsa_strategy = "none" if not s["dsa"] else cfg.dsa_strategy
    _model(cfg, s["model"], s["model_width"])
    cfg.source = f"{_fred.REPOSITORY} {s['source']}"
    if not published:
        cfg.source = derived(f"FreD DM {derive.row_text(key, cfg.source)} row, same shape "
                             f"{derive.shape_of(dataset)}")
    return True


# ---- embedded sets ---------------------------------------------------------------------------
def _fred_embedded(cfg, objective, dataset, shape) -> str:
    cfg.param.norm = "none"
    grid = shape[:-1]
    if modality(dataset) == "voxel":
        n = 1
        for g in grid:
            n *= int(g)
        cfg.param.k = n // FRED_VOXEL_K_RATIO
        how = f"k = grid/{FRED_VOXEL_K_RATIO} = {cfg.param.k} (3D MNIST's ratio)"
    else:
        cfg.param.k = derive.fred_k(shape)
        how = f"k = grid/4 = {cfg.param.k} (the digits rule)"
    cfg.opt.syn.lr = derive.fred_lr(objective, shape)
    return (f"FreD {how}, lr_freq = {derive.FRED_ORTHO_LR[objective]:g} (digits-tuned, "
            f"orthonormal) x 2^{len(grid)} x grid = {cfg.opt.syn.lr:g}")


def _ddif_embedded(cfg, dataset, ipc, shape, run) -> str:
    f = EMBEDDED_FIELDS[dataset]
    _set_fields(cfg, f)
    cfg.param.fields_per_class = 0
    derive.ddif_fit(cfg.param, ipc, shape)
    cfg.param.warmup_steps = int(run["warmup"])
    cfg.opt.syn = ml_collections.ConfigDict(dict(name="adam", lr=EMBEDDED_LR_NF))
    narrowed = "" if cfg.param.width == f["layer_size"] else f", narrowed to {cfg.param.width}"
    return (f"DDiF field {f['num_layers']} sine layers, width {f['layer_size']}{narrowed}, "
            f"w0 {f['w0']:g} (the {modality(dataset)} field), lr_nf {EMBEDDED_LR_NF:g}, "
            f"{run['warmup']} warm-up steps")


# NSD's SGD lr with an un-normalized network (ConvNet3D): the digits lr (tuned through
# instance norm, which hides NSD's scale burst) made DM's loss NaN within 10 steps
NSD_NO_NORM_LR = 0.01
# DM's pixel lr on the embedded video (the digits recipe's 1.0 moved the clips too little
# in 200 iterations: 25.9 % against random real's 24.9 %; 10: 33.1 %, 2026-12-08)
PIXEL_VIDEO_LR = 10.0


def _nsd_embedded(cfg, objective, dataset) -> str:
    cfg.max_image_rms_ratio = 1e12  # NSD's scale burst under DM / DC (jaxdd.config.matching)
    if str(cfg.model.name).lower().startswith("convnet3d"):
        cfg.opt.syn.lr = NSD_NO_NORM_LR
        return (f"NSD size rule per grid axis (an extension), lr {NSD_NO_NORM_LR:g} (ConvNet3D "
                f"has no normalization layer)")
    return "NSD size rule per grid axis (an extension)"


def _pixel_embedded(cfg, objective, dataset) -> str:
    if objective == "dm" and modality(dataset) == "video":
        cfg.opt.syn.lr = PIXEL_VIDEO_LR
        return f"pixels, lr {PIXEL_VIDEO_LR:g} (the DM recipe's 1.0 x 10)"
    return "pixels, the method's recipe lr"


def embedded(cfg, objective: str, param: str, dataset: str, ipc: int):
    """The embedded CPU setting of a video / audio / voxel set for (objective, param): the
    budget of `EMBEDDED_RUN`, no augmentation, the set's network (narrowed), the
    parameterization's digits-tuned optimizer with fields sized for the grid."""
    run = EMBEDDED_RUN[dataset]
    shape = tuple(info(dataset)["shape"])
    cfg.iterations = int(run["iterations"][objective])
    cfg.checkpoint_every, cfg.log_every = 50, 10
    cfg.dsa_strategy = "none"
    _eval(cfg, run["eval_epochs"], 0, 5)
    _model(cfg, info(dataset)["model"], run["width"])
    if objective in ("dm", "dc"):
        cfg.objective.batch_real = int(run["batch_real"])
    how = {"pixel": lambda: _pixel_embedded(cfg, objective, dataset),
           "fred": lambda: _fred_embedded(cfg, objective, dataset, shape),
           "ddif": lambda: _ddif_embedded(cfg, dataset, ipc, shape, run),
           "nsd": lambda: _nsd_embedded(cfg, objective, dataset)}[param]()
    ext = "; TM on this modality is an extension" if objective == "tm" else ""
    cfg.source = derived(
        f"{SOURCE_EMBEDDED.format(name=dataset, modality=modality(dataset))}: "
        f"{objective.upper()} for {cfg.iterations} iterations, "
        + (f"{run['batch_real']} real per class, " if objective != "tm" else "")
        + f"{info(dataset)['model']} width {run['width']}, {run['eval_epochs']} "
        f"evaluation epochs, no augmentation; {how}{ext}")
    return cfg


def embedded_tm(cfg, param: str, dataset: str, ipc: int):
    """TM on an embedded modal set (extension): the digits TM hyperparameters with
    `EMBEDDED_TM`'s short buffer and unrolls, then `embedded`."""
    t = EMBEDDED_TM
    apply_tm_hyper(cfg, dict(DIGITS_TM, syn_steps=t["syn_steps"],
                             max_start_epoch=t["max_start_epoch"],
                             expert_epochs=t["expert_epochs"]))
    cfg.objective.batch_syn = int(t["batch_syn"])
    cfg.buffer.num_experts = int(t["num_experts"])
    cfg.buffer.epochs = int(t["max_start_epoch"] + t["expert_epochs"])
    cfg.buffer.experts_per_group = 1
    if param == "pixel":
        cfg.opt.syn.lr = DIGITS_TM["lr_img"]
    embedded(cfg, "tm", param, dataset, ipc)
    if param == "ddif":
        cfg.decode_subset = cfg.objective.syn_steps * cfg.objective.batch_syn
    return cfg
