"""Spectral diagnostic of a distilled set (UniDD view): FFC spectra and FLC band energies.

For every conv-layer input of a network, compare the real training set with a distilled
set: the sorted eigenvalues of the feature-feature covariance Psi (real vs synthetic) and
the energy of the feature-label correlation Phi per frequency band (Phi projected on the
eigenvectors of the REAL Psi; band 0 = the largest eigenvalues = lowest frequencies).
`spectral_report` computes them through a given network (`cfm_workdir_report`: a CFM run's
teacher and cached statistics; `synthetic_report`: any saved set through a fresh network);
`jaxdd.viz.write_spectral_report` draws them (launch/spectral_diagnostic.py is the command
line; launch/cfm.py writes it at the end of a CFM run).
"""
from __future__ import annotations

import json
import os

import numpy as np


def spectral_report(model, variables, real_images, real_labels, syn_images, syn_labels,
                    num_classes, *, bands=8, exclude=("shortcut",), real_stats=None,
                    batch_size=500, progress=False):
    """Per-layer spectra of the real and the synthetic set through one network.

    For every recorded conv-layer input (`jaxdd.teacher.real_statistics`): the eigenvalues of
    the real and the synthetic Psi (descending), and the FLC energy per frequency band:
    ||U_b^T Phi||^2 with U the eigenvectors of the REAL Psi (low frequency = large
    eigenvalue first), bands = groups of contiguous eigen-indices; for both Phi (real) and
    Phi_s (synthetic). `real_stats` (the real pass, e.g. a CFM run's cached statistics)
    replaces real_images / real_labels. Returns a JSON-able dict {'layers': [...], ...}.
    """
    import jax.numpy as jnp

    from jaxdd.teacher import real_statistics
    from jaxdd.objective import spectral

    real = real_stats or real_statistics(model, variables, real_images, real_labels,
                                         num_classes, batch_size=batch_size, exclude=exclude,
                                         progress=progress)
    syn = real_statistics(model, variables, syn_images, syn_labels, num_classes,
                          batch_size=batch_size, exclude=exclude, progress=False)
    layers = []
    for l, name in enumerate(real["names"]):
        lam_r, u = spectral.eigh_sorted(jnp.asarray(real["psi"][l], jnp.float32))
        lam_s, _ = spectral.eigh_sorted(jnp.asarray(syn["psi"][l], jnp.float32))
        _, band_r = spectral.flc_band_energy(jnp.asarray(real["phi"][l]), u, bands)
        _, band_s = spectral.flc_band_energy(jnp.asarray(syn["phi"][l]), u, bands)
        band_r, band_s = np.asarray(band_r, np.float64), np.asarray(band_s, np.float64)
        layers.append({
            "name": name,
            "dim": int(lam_r.shape[0]),
            "eig_real": [float(v) for v in np.asarray(lam_r)],
            "eig_syn": [float(v) for v in np.asarray(lam_s)],
            "flc_band_energy_real": [float(v) for v in band_r],
            "flc_band_energy_syn": [float(v) for v in band_s],
            "flc_band_fraction_real": [float(v) for v in band_r / max(band_r.sum(), 1e-30)],
            "flc_band_fraction_syn": [float(v) for v in band_s / max(band_s.sum(), 1e-30)],
        })
    return {"bands": int(bands), "num_real": int(real["count"]),
            "num_syn": int(np.asarray(syn_images).shape[0]), "layers": layers}


def cfm_workdir_report(workdir, synthetic=None, *, bands=8, progress=True):
    """`spectral_report` of a CFM run of the generic loop (a configs/cfm_*.py workdir): its
    teacher and cached real statistics (loaded by `jaxdd.teacher.prepare_teacher` from the
    files the run wrote) and its synthetic set (default <workdir>/synthetic.msgpack)."""
    import ml_collections

    from jaxdd import assemble, teacher
    from jaxdd.io import decode_synthetic

    with open(os.path.join(workdir, "config.json")) as f:
        cfg = ml_collections.ConfigDict(json.load(f))
    if cfg.objective.get("name") != "cfm":
        raise ValueError(f"{workdir} is not a CFM run (objective {cfg.objective.get('name')!r}); "
                         "use jaxdd.bench.spectral.synthetic_report for other sets")
    train, test = assemble.data(cfg, shard=None)
    t = teacher.prepare_teacher(cfg.objective, train, test,
                            cfg.objective.squeeze.get("dir", "") or workdir, progress=progress)
    images, labels, _ = decode_synthetic(synthetic or os.path.join(workdir, "synthetic.msgpack"))
    exclude = tuple(cfg.objective.statistics.get("exclude", ("shortcut",)))
    return spectral_report(t["model"], t["variables"], None, None, np.asarray(images),
                           np.asarray(labels), int(train.num_classes), bands=int(bands),
                           exclude=exclude, real_stats=t["stats"])


def synthetic_report(synthetic, *, dataset=None, resolution=None, model=None, seed=0,
                     bands=8, max_real=0):
    """The report of any saved set (jaxdd.io.save_synthetic) through a freshly initialized
    network (the set's student model unless `model` is given). The real data is loaded
    with the dataset settings stored in the set's metadata (ZCA included), or `dataset` /
    `resolution`; `max_real` > 0 subsamples it."""
    import jax

    from jaxdd import assemble
    from jaxdd.io import decode_synthetic, load_synthetic
    from jaxdd.models import get_model

    d = load_synthetic(synthetic)
    images, labels, _ = decode_synthetic(d)
    meta = d.get("meta", {}) or {}
    ds = dict(meta.get("dataset", {}) or {})
    name = dataset or ds.get("name")
    if not name:
        raise ValueError(f"{synthetic} has no dataset metadata: pass the dataset name")
    res = resolution or ds.get("resolution")
    # the run's own preprocessing (normalize, stats, resize, ZCA): the one dataset mapping
    train, _ = assemble.data({**ds, "name": name}, shard=None, resolution=res)
    mname = model or (meta.get("model", {}) or {}).get("name") or "ConvNetD3"
    net = get_model(mname, train.num_classes)
    variables = net.init(jax.random.key(seed), np.asarray(images[:2]))
    x, y = train.images, train.labels
    if max_real and max_real < len(y):
        sel = np.sort(np.random.default_rng(seed).choice(len(y), max_real, replace=False))
        x, y = x[sel], y[sel]
    report = spectral_report(net, variables, x, y, np.asarray(images), np.asarray(labels),
                             train.num_classes, bands=bands)
    report["network"] = f"{mname} (random init, seed {seed})"
    return report


def summary_lines(report):
    """One text line per layer: top eigenvalue and low-band FLC fraction, real vs syn."""
    return [f"  {lay['name']:>24s} d={lay['dim']:4d}  top eig real {lay['eig_real'][0]:.3g}"
            f" syn {lay['eig_syn'][0]:.3g} | FLC low-band fraction real "
            f"{lay['flc_band_fraction_real'][0]:.3f} syn {lay['flc_band_fraction_syn'][0]:.3f}"
            for lay in report["layers"]]
