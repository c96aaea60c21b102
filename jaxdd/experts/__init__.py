"""Expert trajectories for trajectory matching (MTT): train them, store them, load slices.

One job per module:

    training   the MTT recipe, experts trained together (vmap) on fixed lanes, the PRNG
               contract (`train_experts`, `make_epoch_fn`, `make_ordered_epoch_fn`)
    storage    one Orbax checkpoint per expert, partial reads of epoch snapshots
               (`save_expert`, `list_experts`, `load_slice`, `expert_dir`)
    identity   what an expert records and must match for a buffer config
               (`expected_metadata`, `check_metadata`; compared by `jaxdd.fingerprint`)
    hints      the command that builds a buffer (`build_command`)
    build      `build_buffer` (train the missing experts, resumable, multi-process) and
               `load_trajectories` (check, read the needed snapshots, name what is missing)
    errors     ExpertMismatchError, MissingExpertsError, DamagedExpertError

Everything callers use is importable from ``jaxdd.experts``. The buffer directory always
comes from the buffer config (``cfg.buffer_dir``; `jaxdd.config` fills the default).
"""
from __future__ import annotations

from jaxdd.experts.errors import DamagedExpertError, ExpertMismatchError, MissingExpertsError
from jaxdd.experts.training import (DEFAULT_DSA, expert_keys, make_epoch_fn,
                                    make_ordered_epoch_fn, train_experts)
# private helpers the benchmarks (jaxdd.bench) and the lane tests call directly
from jaxdd.experts.training import _make_init_fn, _train  # noqa: F401
from jaxdd.experts.storage import (FORMAT, dir_bytes, expert_dir, list_experts,
                                   load_expert_metadata, load_slice, save_expert)
from jaxdd.experts.identity import check_metadata, expected_metadata, expert_metadata
from jaxdd.experts.hints import build_command
from jaxdd.experts.build import build_buffer, load_trajectories

__all__ = [
    "DamagedExpertError",
    "ExpertMismatchError",
    "MissingExpertsError",
    "DEFAULT_DSA",
    "FORMAT",
    "train_experts",
    "make_epoch_fn",
    "make_ordered_epoch_fn",
    "expert_keys",
    "save_expert",
    "load_expert_metadata",
    "list_experts",
    "load_trajectories",
    "load_slice",
    "check_metadata",
    "expected_metadata",
    "expert_metadata",
    "build_command",
    "build_buffer",
    "expert_dir",
    "dir_bytes",
]
