"""Spectral diagnostic of a distilled set (UniDD view): FFC spectra and FLC band energies.

For every conv-layer input of a network, compare the real training set with a distilled
set: the sorted eigenvalues of the feature-feature covariance Psi (real vs synthetic) and
the energy of the feature-label correlation Phi per frequency band (Phi projected on the
eigenvectors of the REAL Psi; band 0 = the largest eigenvalues = lowest frequencies).
The numbers come from `jaxdd.cfm.spectral_report`; `jaxdd.viz.write_spectral_report` draws
them (launch/spectral_diagnostic.py is the command line).
"""
from __future__ import annotations

import json
import os

import numpy as np


def cfm_workdir_report(workdir, synthetic=None, *, bands=8, progress=True):
    """The report of a CFM run: its teacher and its cached real statistics."""
    from jaxdd import cfm

    return cfm.run_spectral_report(workdir, synthetic, bands=bands, progress=progress)


def synthetic_report(synthetic, *, dataset=None, resolution=None, model=None, seed=0,
                     bands=8, max_real=0):
    """The report of any saved set (jaxdd.io.save_synthetic) through a freshly initialized
    network (the set's student model unless `model` is given). The real data is loaded
    with the dataset settings stored in the set's metadata (ZCA included), or `dataset` /
    `resolution`; `max_real` > 0 subsamples it."""
    import jax

    from jaxdd import cfm
    from jaxdd.data import load_dataset
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
    train, _ = load_dataset(name, resolution=res, zca=bool(ds.get("zca", False)),
                            zca_eps=float(ds.get("zca_eps", 0.1)), data_dir=ds.get("data_dir"))
    mname = model or (meta.get("model", {}) or {}).get("name") or "ConvNetD3"
    net = get_model(mname, train.num_classes)
    variables = net.init(jax.random.key(seed), np.asarray(images[:2]))
    x, y = train.images, train.labels
    if max_real and max_real < len(y):
        sel = np.sort(np.random.default_rng(seed).choice(len(y), max_real, replace=False))
        x, y = x[sel], y[sel]
    report = cfm.spectral_report(net, variables, x, y, np.asarray(images), np.asarray(labels),
                                 train.num_classes, bands=bands)
    report["network"] = f"{mname} (random init, seed {seed})"
    return report


def summary_lines(report):
    """One text line per layer: top eigenvalue and low-band FLC fraction, real vs syn."""
    return [f"  {lay['name']:>24s} d={lay['dim']:4d}  top eig real {lay['eig_real'][0]:.3g}"
            f" syn {lay['eig_syn'][0]:.3g} | FLC low-band fraction real "
            f"{lay['flc_band_fraction_real'][0]:.3f} syn {lay['flc_band_fraction_syn'][0]:.3f}"
            for lay in report["layers"]]
