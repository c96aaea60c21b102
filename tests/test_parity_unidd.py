"""Parity: jaxdd's CFM statistics and filter losses against the authors' hook.py
(bdy9527/UniDD; fixture made by tests/parity/make_unidd.py).

Inputs: conv-input features (C = 4, 3x3 maps, 3 classes): 11 real images in batches of
4 / 4 / 3, then IPC = 2 synthetic batches of one image per class, beta from the cosine
curriculum, EMU on; filters HFM / LFM x signals 'mean' / 'class'.

Checked: the real Psi / mean / Phi (jaxdd `batch_moments` + `MomentMerger`, merge='batch' ==
the hook's running statistics; merge='exact' differs from it by the scatter of the batch
means, asserted explicitly), the synthetic batch statistics, the EMU cache, the curriculum
beta, the per-layer feature loss L_filter + L_signal (the hook's r_feature) and its gradient
w.r.t. the synthetic features. Tolerances: statistics rtol 1e-5 (float32 sums of ~100
terms); losses rtol 1e-5; gradients (through a 4x4 solve) rtol 1e-4, atol 1e-6 x max.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from parity.common import load_fixture

from jaxdd.objective import cfm as cfm_objective
from jaxdd.objective import spectral

FX = load_fixture("unidd")
K = 3
IPC = FX["syn_feats"].shape[0]


def nhwc(x):
    return jnp.asarray(np.moveaxis(np.asarray(x), -3, -1))


def real_stats(merge):
    feats, labels = nhwc(FX["real_feats"]), FX["real_labels"]
    m = spectral.MomentMerger(merge)
    s = 0
    for n in FX["real_batches"]:
        n = int(n)
        out = spectral.batch_moments([feats[s:s + n]], jnp.asarray(labels[s:s + n]),
                                jnp.ones((n,), jnp.float32), K)
        m.add(jax.device_get(out), n)
        s += n
    return m.result()


def test_real_statistics_are_the_hooks_running_statistics():
    psi, phi, mean = real_stats("batch")
    np.testing.assert_allclose(psi[0], FX["running_cov"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mean[0], FX["running_mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(phi[0], FX["running_class_mean"], rtol=1e-5, atol=1e-6)
    # 'exact' (the paper's covariance over all N*H*W positions) is another number: the
    # hook averages per-batch covariances, each centered at its batch mean
    psi_x, phi_x, mean_x = real_stats("exact")
    flat = np.moveaxis(FX["real_feats"], 1, -1).reshape(-1, FX["real_feats"].shape[1])
    np.testing.assert_allclose(psi_x[0], np.cov(flat.T.astype(np.float64), bias=True),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(phi_x[0], phi[0], rtol=1e-6)
    np.testing.assert_allclose(mean_x[0], mean[0], rtol=1e-6)
    gap = np.abs(psi_x[0] - FX["running_cov"]).max()
    assert gap > 1e-2 * np.abs(FX["running_cov"]).max(), gap


def test_curriculum_beta_is_the_authors_schedule():
    for b in range(IPC):
        assert spectral.curriculum_beta(0.1, b, IPC) == pytest.approx(float(FX["betas"][b]),
                                                                       rel=1e-12)


@pytest.mark.parametrize("filt", ["HFM", "LFM"])
@pytest.mark.parametrize("sig", ["mean", "class"])
def test_feature_loss_ema_and_gradient(filt, sig):
    tag = f"{filt}_{sig}"
    psi, phi, mean = real_stats("batch")
    real = {"psi": [jnp.asarray(psi[0])],
            "phi": [jnp.asarray(mean[0] if sig == "mean" else phi[0])]}
    cache = cfm_objective.zero_cache(real)
    labels = jnp.arange(K, dtype=jnp.int32)  # one image per class (synthesis_small.py)

    @jax.jit
    def value_and_grad(f, cache, beta, b):
        def fn(f):
            lf, ls, batch = cfm_objective.feature_losses(real, cache, [f], labels, beta, b,
                                               num_classes=K, filter=filt.lower(), signal=sig,
                                               ema=True)
            return lf + ls, batch
        return jax.value_and_grad(fn, has_aux=True)(f)

    for b in range(IPC):
        f = nhwc(FX["syn_feats"][b])
        beta = spectral.curriculum_beta(0.1, b, IPC)
        (val, batch), g = value_and_grad(f, cache, jnp.float32(beta), jnp.float32(b + 1))
        np.testing.assert_allclose(batch["psi"][0], FX[f"{tag}/batch_cov/{b}"], rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(batch["phi"][0], FX[f"{tag}/batch_signal/{b}"], rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(val, FX[f"{tag}/r_feature/{b}"], rtol=1e-5)
        g_ref = np.moveaxis(FX[f"{tag}/grad/{b}"], 1, -1)
        np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-6 * np.abs(g_ref).max())
        # the authors' ema_update after the batch (jaxdd: the CFM objective's post_step fold)
        cache = spectral.emu(cache, batch, float(b + 1))
        np.testing.assert_allclose(cache["psi"][0], FX[f"{tag}/ema_cov/{b}"], rtol=1e-5,
                                   atol=1e-6)


def test_published_cfm_config_matches_the_authors_settings():
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "configs", "cfm_pixel.py")
    spec = importlib.util.spec_from_file_location("cfm_config", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = mod.get_config("cifar10,ipc=10")
    o, s = cfg.objective, cfg.opt.syn
    # synthesis_small.py: loss = loss_ce + 0.1 * sum r_feature; Adam(0.25, (0.5, 0.9)) with a
    # cosine over 1000 iterations per batch (a new optimizer per batch: per instance);
    # beta 0.1 with --cos; --signal mean; jitter 4; hook inputs, batch 128
    assert (o.eta, s.lr, s.b1, s.b2, s.decay_steps, o.beta) == (0.1, 0.25, 0.5, 0.9, 1000, 0.1)
    assert (s.name, s.schedule, s.per_instance) == ("adam", "cosine", True)
    assert cfg.iterations == 10 * 1000
    assert (o.filter, o.signal, o.curriculum, o.ema, o.jitter) == ("hfm", "mean", True, True, 4)
    assert cfg.param.init == "first" and not o.per_sample_aug
    assert (o.statistics.psi, o.statistics.batch_size) == ("batch", 128)
