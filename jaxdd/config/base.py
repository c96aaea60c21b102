"""The fields every distillation config has, the start of every builder, and the TM pieces
shared by the tm_* builders (MTT's published rows, the digits setting)."""
from __future__ import annotations

from typing import NamedTuple

import ml_collections

from jaxdd.config.datasets import info
from jaxdd.config.parse import parse_arg
from jaxdd.published import DERIVED, lookup
from jaxdd.published import mtt as _mtt

EMBEDDED = "jaxdd embedded CPU setting (digits)"


def derived(how: str) -> str:
    """cfg.source of a setting jaxdd derived for an unpublished (dataset, ipc)."""
    return f"{DERIVED}: {how}"


def base_config(dataset: str, ipc: int) -> ml_collections.ConfigDict:
    """Fields every distillation config has (objective/param filled by the config file)."""
    del ipc  # the parameterization's block holds it (start)
    i = info(dataset)
    cfg = ml_collections.ConfigDict()
    # where the setting comes from, shown in the settings table (jaxdd.published.table)
    cfg.source = "jaxdd default (not a published setting)"
    cfg.seed = 0
    cfg.iterations = 5000
    cfg.dsa_strategy = "color_crop_cutout_flip_scale_rotate"
    cfg.checkpoint_every = 100
    cfg.keep_checkpoints = 2
    cfg.log_every = 10
    cfg.decode_subset = 0  # >0: decode only this many random instances per iteration
    cfg.grid_max_per_class = 10
    # devices of the run's mesh (jaxdd.sharding): 0 = every device (all processes' after
    # --distributed); n = the first n; 1 = no sharding
    cfg.mesh = ml_collections.ConfigDict(dict(data=0))
    # divergence guard: stop (keeping the last good checkpoint) when the decoded synthetic
    # images' RMS exceeds this many times the real images' RMS (jaxdd.distill). 1e4: NSD's
    # digits run reaches ~113x and trains fine (instance norm is scale-free); an absurd
    # opt.syn.lr=1e12 reaches ~1e10x by iteration 10.
    cfg.max_image_rms_ratio = 1e4

    cfg.dataset = ml_collections.ConfigDict()
    cfg.dataset.name = i["data"]  # the load_dataset name (an npz file: its path)
    cfg.dataset.resolution = i["resolution"]
    cfg.dataset.zca = False
    cfg.dataset.zca_eps = 0.1
    cfg.dataset.data_dir = None
    # variable-size sources (imagenette, imagenet2012:<subset>): None = 'squash' (the
    # authors' Resize((R, R))) or 'crop' (jaxdd.data.load_dataset)
    cfg.dataset.resize = None
    cfg.dataset.download = False  # let tfds download and prepare an absent dataset

    cfg.model = ml_collections.ConfigDict()
    cfg.model.name = i["model"]
    cfg.model.overrides = ml_collections.ConfigDict()

    cfg.buffer = ml_collections.ConfigDict()
    cfg.buffer.num_experts = 100
    cfg.buffer.epochs = 50
    cfg.buffer.lr_teacher = 0.01
    cfg.buffer.batch_size = 256
    cfg.buffer.seed = 0
    cfg.buffer.record_epochs = None
    cfg.buffer.experts_per_group = 10
    cfg.buffer.buffer_dir = ""  # "" -> buffers/<dataset>-<res>-<zca>-<model>

    cfg.objective = ml_collections.ConfigDict()
    cfg.objective.name = "tm"
    cfg.objective.syn_steps = 20
    cfg.objective.expert_epochs = 2
    cfg.objective.max_start_epoch = 10
    cfg.objective.batch_syn = 0  # 0: all synthetic images every student step
    cfg.objective.remat = True
    # TM: images per gradient chunk inside a student step (0: the whole minibatch); bounds
    # the second-order pass's memory by the chunk (jaxdd.objective.tm.make_loss)
    cfg.objective.microbatch = 0
    cfg.objective.gamma = 0.0  # real-guided CE weight (NSD)
    cfg.objective.real_batch = 256

    cfg.opt = ml_collections.ConfigDict()
    cfg.opt.syn = ml_collections.ConfigDict(dict(name="sgd", lr=100.0, momentum=0.5))
    cfg.opt.lr = ml_collections.ConfigDict(dict(lr=1e-5, momentum=0.5, init=0.01,
                                                min_syn_lr=None))

    cfg.eval = ml_collections.ConfigDict()
    cfg.eval.every = 0  # 0: only at the end; >0: also at iteration 0 and every N (as MTT)
    cfg.eval.num_nets = 5
    cfg.eval.final_nets = 5
    cfg.eval.epochs = 1000
    cfg.eval.batch_size = 256
    cfg.eval.final = True
    cfg.eval.random_real_baseline = True
    # score the random-real baseline in a thread beside the distillation (same keys, same
    # result; a CPU loop leaves part of the cores idle); single-process runs only
    cfg.eval.overlap_baseline = True
    # False (the authors'): each of the K networks draws its own DSA op group per step;
    # True: one op group per step shared by the K networks (jaxdd.evaluate)
    cfg.eval.share_dsa_ops = False
    return cfg


class Start(NamedTuple):
    """What `start` hands a builder: the config so far and the parsed config string."""
    cfg: ml_collections.ConfigDict
    dataset: str          # a name of jaxdd.config.DATASETS or an npz path
    ipc: int
    overrides: dict       # the config string's field=value pairs (apply_overrides)


def start(param: str, arg: str | None, default_ipc: int = 1) -> Start:
    """The start of every builder: `base_config` + the parameterization's default_config
    (name, ipc set) for the config string `arg`. The builder finishes with
    `apply_overrides(s.cfg, s.overrides)`."""
    from jaxdd import param as param_lib  # its config block (the first call imports it)

    dataset, overrides = parse_arg(arg)
    ipc = int(overrides.get("ipc", default_ipc))
    cfg = base_config(dataset, ipc)
    cfg.param = param_lib.get(param).default_config()
    cfg.param.name, cfg.param.ipc = param, ipc
    return Start(cfg, dataset, ipc, overrides)


# The TM hyperparameters of the embedded digits setting (MTT's row layout): what a derived
# TM config takes when no published row has its image shape (jaxdd.config.derive).
DIGITS_TM = dict(syn_steps=20, expert_epochs=2, max_start_epoch=5, lr_img=100.0, lr_lr=1e-5,
                 lr_teacher=0.01, batch_syn=0)


def apply_tm_hyper(cfg, row: dict):
    """The TM hyperparameters of a row (MTT's layout): syn_steps, expert_epochs,
    max_start_epoch, batch_syn (when the row has one), lr_lr and lr_teacher (the initial
    syn_lr). The synthetic parameters' lr (lr_img) is the caller's: it is per
    parameterization."""
    o = cfg.objective
    o.syn_steps, o.expert_epochs = row["syn_steps"], row["expert_epochs"]
    o.max_start_epoch = row["max_start_epoch"]
    if "batch_syn" in row:
        o.batch_syn = row["batch_syn"]
    cfg.opt.lr.lr, cfg.opt.lr.init = row["lr_lr"], row["lr_teacher"]
    return cfg


def mtt_recipe(cfg):
    """MTT's dataset-agnostic run settings (distill.py / buffer.py defaults): iterations, the
    evaluation protocol and the expert buffer."""
    cfg.iterations = _mtt.ITERATIONS
    # the authors evaluate every --eval_it = 100 iterations (and at iteration 0); jaxdd
    # reports the final evaluation and records their best-over-evaluations statistic too
    cfg.eval.every = _mtt.EVAL["every"]
    cfg.eval.epochs = _mtt.EVAL["epochs"]
    cfg.eval.num_nets = cfg.eval.final_nets = _mtt.EVAL["num_nets"]
    cfg.eval.batch_size = _mtt.EVAL["batch_size"]
    b = _mtt.BUFFER
    cfg.buffer.num_experts, cfg.buffer.epochs = b["num_experts"], b["epochs"]
    cfg.buffer.lr_teacher, cfg.buffer.batch_size = b["lr_teacher"], b["batch_size"]
    return cfg


def apply_mtt(cfg, dataset, ipc):
    """Fill the TM fields from MTT's published row of (dataset, ipc) (jaxdd.published.mtt).

    Raises (via `lookup`, listing the published settings) when MTT did not publish
    (dataset, ipc): the builders pick the row (published, or the nearest: jaxdd.config.derive).
    """
    s = lookup(_mtt.TABLE, dataset, ipc, "MTT (jaxdd.published.mtt)")
    apply_tm_hyper(cfg, s)
    cfg.opt.syn.lr = s["lr_img"]
    cfg.dataset.zca = s["zca"]
    cfg.model.name = s["model"]
    cfg.source = s["source"]
    return mtt_recipe(cfg)


# The digits expert buffer (the embedded CPU setting): 8 experts, trained only as far as the
# digits TM setting reads them (max_start_epoch + expert_epochs = 7 epochs: the snapshots
# 0..7 are the same whatever the total, every epoch's randomness is keyed by its index),
# one expert at a time: on CPU a vmapped group of 8 took 1.9x the time of 8 single experts
# and 2.3x the peak memory (1858 vs 814 MB; 8 experts x 4 epochs, 2026-12-07, 2-core CPU;
# docs/performance.md "The main command").
DIGITS_BUFFER = dict(num_experts=8,
                     epochs=DIGITS_TM["max_start_epoch"] + DIGITS_TM["expert_epochs"],
                     experts_per_group=1)


def digits_tm(cfg):
    """The embedded CPU setting shared by the tm_* configs (digits at 16x16, ConvNetD2W32)."""
    cfg.iterations = 300
    cfg.checkpoint_every = 50
    for k, v in DIGITS_BUFFER.items():
        cfg.buffer[k] = v
    apply_tm_hyper(cfg, {k: v for k, v in DIGITS_TM.items() if k != "batch_syn"})
    cfg.opt.syn.lr = DIGITS_TM["lr_img"]
    return cfg
