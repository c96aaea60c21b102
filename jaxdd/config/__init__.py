"""The config builders behind configs/ (importable: a normal install needs no configs/ dir).

Configs are data: this package reads jaxdd.published (the authors' values) and builds
ConfigDicts; it imports no objective, loop or expert code (tests/test_config_data.py). Only
`start` reads a parameterization's own config block (jaxdd.param, when a builder runs).

A config string selects a variant: `configs/tm_pixel.py:cifar10,ipc=10` -> dataset
'cifar10', overrides {'ipc': 10}; `parse_config_string` is the one parser (values are Python
literals when they parse, else strings). The dataset is a name of `DATASETS` or a path
ending in '.npz' (its shape and classes read from the file's header).

A (dataset, ipc) the authors published gets their row exactly; any other one gets a derived
setting labelled ``cfg.source = "derived, not published: <how>"`` (rules: `derive`).

  parse     parse_config_string / parse_arg, apply_overrides, the --config.* flags
            (pop_config_flags / apply_config_flags: every field checked, "did you mean"
            via field_problem), model-override flags, default_workdir
  datasets  DATASETS (network, resolution, shape, classes), info(dataset) (npz: header)
  base      base_config(dataset, ipc), start(param, arg) -> Start(cfg, dataset, ipc,
            overrides), apply_mtt / digits_tm (MTT's rows / the digits TM setting)
  derive    the rules for unpublished settings (nearest row of the same image shape, else
            the digits default re-sized for the budget)
  tm        tm_config(param, arg)              every TM config (configs/tm_*.py)
  matching  matching_config(obj, param, arg)   every DM / DC config (configs/{dm,dc}_*.py)
  cfm       cfm_config(param, arg)             every CFM config (configs/cfm_*.py)
  modal     video / audio / voxel rows and the embedded sets (digits_video, digits_voxel,
            synth_speech): their CPU budget constants (EMBEDDED_RUN, EMBEDDED_FIELDS, ...)
  buffers   buffer_config(arg) (configs/buffer.py, build hints), buffer_for(cfg) (the
            buffer a distillation config reads), default_buffer_dir / dataset_tag
"""
from jaxdd.config.base import (DIGITS_TM, EMBEDDED, Start, apply_mtt, apply_tm_hyper,
                               base_config, derived, digits_tm, mtt_recipe, start)
from jaxdd.config.buffers import (BUFFER_VARIANTS, buffer_config, buffer_for, dataset_tag,
                                  default_buffer_dir)
from jaxdd.config.cfm import CFM_EVAL_BATCH, CFM_PARAMS, cfm_config
from jaxdd.config.datasets import DATASETS, info
from jaxdd.config.matching import FRED_DIGITS_LR, MATCHING_EMBEDDED_ITERS, matching_config
from jaxdd.config.parse import (apply_config_flags, apply_model_overrides, apply_overrides,
                                default_workdir, field_problem, flag_problems, parse_arg,
                                parse_config_string, pop_config_flags,
                                pop_model_override_flags)
from jaxdd.config.tm import tm_config

__all__ = [
    "BUFFER_VARIANTS", "CFM_EVAL_BATCH", "CFM_PARAMS", "DATASETS", "DIGITS_TM",
    "EMBEDDED", "FRED_DIGITS_LR", "MATCHING_EMBEDDED_ITERS", "Start", "apply_config_flags",
    "apply_model_overrides", "field_problem", "flag_problems", "pop_config_flags",
    "apply_mtt", "apply_overrides", "apply_tm_hyper", "base_config", "buffer_config",
    "buffer_for", "cfm_config", "dataset_tag", "default_buffer_dir", "default_workdir",
    "derived", "digits_tm", "info", "matching_config", "mtt_recipe", "parse_arg",
    "parse_config_string", "pop_model_override_flags", "start", "tm_config",
]
