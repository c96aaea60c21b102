"""The cross-entropy family: one definition used by every trainer and objective.

    per_example_ce(logits, labels, temperature=None)        -> (N,)
    cross_entropy(logits, labels, weights=None, temperature=None)   -> scalar
    kl_divergence(logits, target_probs, weights=None, temperature=1.0, t2_scale=False)

``labels`` are int class indices (N,) (hard) or target probabilities (N, classes) (soft).
Hard labels use optax's ``softmax_cross_entropy_with_integer_labels`` (logsumexp - logit,
PyTorch's CrossEntropyLoss). Soft labels use -sum_c p_c log_softmax(z / T)_c, scaled by T^2
when a temperature T is given (knowledge distillation's convention, so the gradient scale
does not depend on T); hard labels ignore the temperature. ``weights`` (N,) turn the mean
into sum(w * ce) / max(sum(w), 1): 0/1 weights mask padded slots (a short last minibatch)
out of the mean.
``kl_divergence`` = the soft cross-entropy minus the target's entropy (the same gradient,
the value is KL(p || softmax(z / T)), 0 at a perfect match).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

__all__ = ["per_example_ce", "cross_entropy", "kl_divergence", "weighted_mean",
           "is_hard"]


def is_hard(logits, labels) -> bool:
    """True for int class labels (one axis fewer than the logits), False for soft targets."""
    return labels.ndim == logits.ndim - 1


def per_example_ce(logits, labels, temperature=None):
    """Per-example cross-entropy (N,), hard or soft labels (module doc)."""
    if is_hard(logits, labels):  # a temperature only applies to soft targets
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    if temperature is None:
        return -(labels * jax.nn.log_softmax(logits)).sum(-1)
    t = temperature
    return -(labels * jax.nn.log_softmax(logits / t)).sum(-1) * (t * t)


def weighted_mean(per, weights=None):
    """mean(per), or sum(w * per) / max(sum(w), 1) with weights (N,)."""
    if weights is None:
        return per.mean()
    return jnp.sum(per * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def cross_entropy(logits, labels, weights=None, temperature=None):
    """Mean (or weighted-mean) cross-entropy; int labels (N,) or soft targets (N, classes)."""
    return weighted_mean(per_example_ce(logits, labels, temperature), weights)


def kl_divergence(logits, target_probs, weights=None, temperature=1.0, t2_scale=False):
    """(Weighted) mean of KL(p || softmax(z / T)) per example; x T^2 if ``t2_scale``.

    The target p is a probability vector (N, classes); entries p = 0 contribute 0.
    """
    t = temperature
    logq = jax.nn.log_softmax(logits / t)
    p = target_probs
    per = jnp.sum(p * (jnp.log(jnp.maximum(p, 1e-30)) - logq), -1)
    return weighted_mean(per, weights) * (t * t if t2_scale else 1.0)
