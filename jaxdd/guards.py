"""Guards of the distillation loop: stop a run, naming the quantity, before a bad state
is checkpointed (non-finite loss / gradients / parameters, a learned syn_lr that stays
<= 0, exploding decoded images)."""
from __future__ import annotations

import numpy as np


class NonFiniteError(FloatingPointError):
    """Raised when a quantity of the distillation step becomes NaN/inf."""


# Names of the metrics checked for NaN/inf, in the order a message reports them.
_FINITE_CHECK = ("loss", "grad_norm_syn", "grad_norm_lr", "syn_lr", "param_norm_syn")
_QUANTITY = {"loss": "the objective loss", "grad_norm_syn": "the gradient of the synthetic "
             "parameters", "grad_norm_lr": "the gradient of syn_lr", "syn_lr": "syn_lr (the "
             "learned student learning rate)", "param_norm_syn": "the synthetic parameters"}
_KEPT = "The run stopped; the last good checkpoint is kept in the workdir."


class DivergenceError(NonFiniteError):
    """A quantity diverged without becoming NaN/inf: syn_lr <= 0, exploding images."""


def check_finite(metrics, step):
    """Raise NonFiniteError naming the first non-finite quantity of a step's metrics."""
    for name in _FINITE_CHECK:
        if name in metrics and not np.isfinite(metrics[name]):
            raise NonFiniteError(
                f"iteration {step}: {_QUANTITY.get(name, name)} is {metrics[name]} "
                f"(metric '{name}'). {_KEPT} Lower the learning rates (opt.syn.lr, opt.lr.lr) "
                "or syn_steps.")


def check_divergence(metrics, step, *, learn_lr=True, nonpositive_for=1, patience=1):
    """Raise DivergenceError when the learned syn_lr has not been positive for `patience`
    iterations in a row (`nonpositive_for`). MTT has no floor on syn_lr (it is a plain SGD
    parameter) and its early iterations can dip below 0 for a few steps and recover (the
    digits default does at iteration 2), so one dip is tolerated -- but a state with
    syn_lr <= 0 is never checkpointed, and the run never ends on one (the evaluation
    trains with syn_lr). `opt.lr.min_syn_lr` sets a floor (not in the authors' code)."""
    if learn_lr and "syn_lr" in metrics and not metrics["syn_lr"] > 0 \
            and nonpositive_for >= patience:
        raise DivergenceError(
            f"iteration {step}: {_QUANTITY['syn_lr']} is {metrics['syn_lr']:.4g}, not "
            f"positive for {nonpositive_for} iteration(s) in a row (metric 'syn_lr'): the "
            f"students would train backwards. {_KEPT} Lower opt.lr.lr (the learning rate of "
            f"syn_lr) or opt.syn.lr, or set a floor with opt.lr.min_syn_lr (not in the "
            f"authors' code).")


def check_image_scale(rms, real_rms, ratio, step):
    """Raise DivergenceError when the decoded synthetic images' RMS exceeds `ratio` times
    the real training images' RMS (same preprocessed space)."""
    if not np.isfinite(rms):
        raise NonFiniteError(f"iteration {step}: the decoded synthetic images are {rms} "
                             f"(RMS). {_KEPT} Lower the learning rates (opt.syn.lr, "
                             "opt.lr.lr) or syn_steps.")
    if rms > ratio * real_rms:
        raise DivergenceError(
            f"iteration {step}: the decoded synthetic images exploded: RMS {rms:.4g}, "
            f"{rms / max(real_rms, 1e-30):.3g} x the real images' {real_rms:.3g} (limit "
            f"max_image_rms_ratio = {ratio:g}). {_KEPT} Lower opt.syn.lr (the learning rate "
            f"of the synthetic parameters).")


def real_rms_of(ds, rows: int = 4096) -> float:
    """RMS of the first `rows` train images (the divergence guard's scale). A process's
    shard: the same rows of the global split, summed collectively (the same value on every
    process)."""
    sh = getattr(ds, "shard", None)
    if sh is None:
        x = np.asarray(ds.images[:rows], np.float64)
        return float(np.sqrt(np.mean(np.square(x)))) if x.size else 1.0
    from jaxdd.data.shard import allsum
    x = np.asarray(ds.images[sh.rows < rows], np.float64)
    tot = allsum(np.array([np.square(x).sum(), float(x.size)]))
    return float(np.sqrt(tot[0] / tot[1])) if tot[1] else 1.0
