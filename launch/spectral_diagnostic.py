"""Spectral diagnostic of a distilled set (UniDD view): FFC spectra and FLC band energies.

For every conv-layer input of a network, compare the real training set with a distilled
set: the sorted eigenvalues of the feature-feature covariance Psi (real vs synthetic) and
the energy of the feature-label correlation Phi per frequency band (Phi projected on the
eigenvectors of the REAL Psi; band 0 = the largest eigenvalues = lowest frequencies).
Writes a PNG (simple PIL line plots, no matplotlib) and a JSON with the numbers.

    # a CFM run: the network is its teacher (read from the run's squeeze dir)
    python launch/spectral_diagnostic.py --cfm_workdir=/tmp/cfm --out=/tmp/cfm/spectral

    # any saved set (jaxdd.distill.save_synthetic: TM, FreD, DDiF, NSD, CFM) through a
    # freshly initialized network (the set's student model unless --model is given)
    python launch/spectral_diagnostic.py --synthetic=workdirs/tm_pixel-default/synthetic.msgpack \
        --out=/tmp/tm_spectral

The real data is loaded with the dataset settings stored in the set's metadata (ZCA
included), or with --dataset / --resolution.
"""
import json
import os
import sys

# Small LAPACK calls (the (Psi + beta I) solves on CPU) run ~1000x slower when OpenBLAS
# threads compete for busy cores; one thread is plenty for d x d matrices. Must be set
# before numpy / jax load OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

REAL_COLOR = (31, 119, 180)
SYN_COLOR = (214, 39, 40)


# ----------------------------------------------------------------------------- plotting

def _font():
    try:
        return ImageFont.load_default()
    except Exception:  # pragma: no cover
        return None


def _nice(v):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e3 or a < 1e-2:
        return f"{v:.0e}"
    return f"{v:.3g}"


def line_panel(draw, box, series, *, title, xlabel, ylabel, log_y=False, font=None):
    """Draw line plots into box=(x0, y0, x1, y1). series: list of (values, color, label)."""
    x0, y0, x1, y1 = box
    left, bottom, top, right = 52, 30, 22, 10
    px0, py0, px1, py1 = x0 + left, y0 + top, x1 - right, y1 - bottom
    draw.rectangle([x0, y0, x1, y1], fill=(255, 255, 255))
    draw.text((x0 + left, y0 + 4), title, fill=(0, 0, 0), font=font)
    vals = [np.asarray(v, np.float64) for v, _, _ in series if len(v)]
    if not vals:
        return
    allv = np.concatenate(vals)
    if log_y:
        pos = allv[allv > 0]
        floor = pos.min() if pos.size else 1e-12
        tr = lambda v: np.log10(np.maximum(np.asarray(v, np.float64), floor))
    else:
        tr = lambda v: np.asarray(v, np.float64)
    t = np.concatenate([tr(v) for v in vals])
    lo, hi = float(t.min()), float(t.max())
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    n = max(len(v) for v in vals)
    sx = lambda i: px0 + (px1 - px0) * (i / max(n - 1, 1))
    sy = lambda v: py1 - (py1 - py0) * ((v - lo) / (hi - lo))
    # axes + ticks
    draw.line([px0, py0, px0, py1, px1, py1], fill=(0, 0, 0))
    for q in np.linspace(0, 1, 4):
        yv = lo + q * (hi - lo)
        yy = sy(yv)
        draw.line([px0 - 3, yy, px0, yy], fill=(0, 0, 0))
        lab = _nice(10 ** yv) if log_y else _nice(yv)
        draw.text((x0 + 2, yy - 5), lab, fill=(60, 60, 60), font=font)
    for i in sorted(set([0, n - 1, (n - 1) // 2])):
        xx = sx(i)
        draw.line([xx, py1, xx, py1 + 3], fill=(0, 0, 0))
        draw.text((xx - 4, py1 + 5), str(i), fill=(60, 60, 60), font=font)
    draw.text(((px0 + px1) // 2 - 20, y1 - 12), xlabel, fill=(60, 60, 60), font=font)
    draw.text((x0 + 2, y0 + 4 + 10), ylabel, fill=(60, 60, 60), font=font)
    for v, color, _ in series:
        tv = tr(v)
        pts = [(sx(i), sy(tv[i])) for i in range(len(tv))]
        if len(pts) > 1:
            draw.line(pts, fill=color, width=2)
        for p in pts if len(pts) <= 32 else []:
            draw.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=color)
    # legend
    ly = py0 + 2
    for _, color, label in series:
        draw.line([px1 - 70, ly + 5, px1 - 55, ly + 5], fill=color, width=2)
        draw.text((px1 - 52, ly), label, fill=(0, 0, 0), font=font)
        ly += 12


def plot_report(report, path, *, panel=(330, 200)):
    """One row per layer: eigen-spectrum of Psi (log) | FLC energy fraction per band."""
    layers = report["layers"]
    w, h = panel
    img = Image.new("RGB", (2 * w + 30, len(layers) * (h + 10) + 30), (245, 245, 245))
    draw = ImageDraw.Draw(img)
    font = _font()
    draw.text((10, 8), f"UniDD spectra: real (blue, n={report['num_real']}) vs synthetic "
                       f"(red, n={report['num_syn']})", fill=(0, 0, 0), font=font)
    for r, lay in enumerate(layers):
        y = 30 + r * (h + 10)
        line_panel(draw, (10, y, 10 + w, y + h),
                   [(lay["eig_real"], REAL_COLOR, "real"), (lay["eig_syn"], SYN_COLOR, "syn")],
                   title=f"{lay['name']} (d={lay['dim']}): FFC eigenvalues",
                   xlabel="eigen-index (low -> high freq)", ylabel="", log_y=True, font=font)
        line_panel(draw, (20 + w, y, 20 + 2 * w, y + h),
                   [(lay["flc_band_fraction_real"], REAL_COLOR, "real"),
                    (lay["flc_band_fraction_syn"], SYN_COLOR, "syn")],
                   title=f"{lay['name']}: FLC energy fraction per band",
                   xlabel="band (low -> high freq)", ylabel="", log_y=False, font=font)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    img.save(path)
    return path


def write_report(report, out_prefix):
    """-> (png path, json path) for out_prefix + '.png' / '.json'."""
    png = plot_report(report, out_prefix + ".png")
    js = out_prefix + ".json"
    with open(js, "w") as f:
        json.dump(report, f, indent=1)
    return png, js


# ----------------------------------------------------------------------------- CLI

def main(argv):
    del argv
    import jax
    from absl import flags
    from jaxdd import cfm
    from jaxdd.data import load_dataset
    from jaxdd.models import get_model
    F = flags.FLAGS

    if F.cfm_workdir:
        from ml_collections import ConfigDict
        with open(os.path.join(F.cfm_workdir, "config.json")) as f:
            cfg = ConfigDict(json.load(f))
        p = cfm.Pipeline(cfg, F.cfm_workdir, progress=True)
        syn_path = F.synthetic or os.path.join(F.cfm_workdir, "synthetic.msgpack")
        from jaxdd.distill import decode_synthetic
        images, labels, _ = decode_synthetic(syn_path)
        report = cfm.spectral_report(p.teacher, p.squeeze(), None, None, np.asarray(images),
                                     labels, p.num_classes, bands=F.bands,
                                     exclude=p.exclude, real_stats=p.statistics())
        out = F.out or os.path.join(F.cfm_workdir, "spectral")
    else:
        if not F.synthetic:
            raise SystemExit("give --synthetic=path/to/synthetic.msgpack (or --cfm_workdir)")
        from jaxdd.distill import decode_synthetic, load_synthetic
        d = load_synthetic(F.synthetic)
        images, labels, _ = decode_synthetic(d)
        meta = d.get("meta", {}) or {}
        ds = dict(meta.get("dataset", {}) or {})
        name = F.dataset or ds.get("name")
        if not name:
            raise SystemExit("the set has no dataset metadata: pass --dataset")
        res = F.resolution or ds.get("resolution")
        train, _ = load_dataset(name, resolution=res, zca=bool(ds.get("zca", False)),
                                zca_eps=float(ds.get("zca_eps", 0.1)),
                                data_dir=ds.get("data_dir"))
        mname = F.model or (meta.get("model", {}) or {}).get("name") or "ConvNetD3"
        model = get_model(mname, train.num_classes)
        variables = model.init(jax.random.key(F.seed), np.asarray(images[:2]))
        x, y = train.images, train.labels
        if F.max_real and F.max_real < len(y):
            sel = np.random.default_rng(F.seed).choice(len(y), F.max_real, replace=False)
            x, y = x[np.sort(sel)], y[np.sort(sel)]
        report = cfm.spectral_report(model, variables, x, y, np.asarray(images),
                                     np.asarray(labels), train.num_classes, bands=F.bands)
        report["network"] = f"{mname} (random init, seed {F.seed})"
        out = F.out or os.path.splitext(F.synthetic)[0] + "_spectral"
    png, js = write_report(report, out)
    print(f"[spectral] {png}\n[spectral] {js}")
    for lay in report["layers"]:
        print(f"  {lay['name']:>24s} d={lay['dim']:4d}  top eig real {lay['eig_real'][0]:.3g}"
              f" syn {lay['eig_syn'][0]:.3g} | FLC low-band fraction real "
              f"{lay['flc_band_fraction_real'][0]:.3f} syn {lay['flc_band_fraction_syn'][0]:.3f}")


if __name__ == "__main__":
    from absl import app, flags
    flags.DEFINE_string("synthetic", "", "a synthetic.msgpack (jaxdd.distill.save_synthetic)")
    flags.DEFINE_string("cfm_workdir", "", "a CFM workdir (uses its teacher and statistics)")
    flags.DEFINE_string("out", "", "output prefix (writes <out>.png and <out>.json)")
    flags.DEFINE_string("dataset", "", "dataset name if the set has no metadata")
    flags.DEFINE_integer("resolution", 0, "dataset resolution override")
    flags.DEFINE_string("model", "", "network for a non-CFM set (default: the set's model)")
    flags.DEFINE_integer("seed", 0, "init seed of the network (non-CFM sets)")
    flags.DEFINE_integer("bands", 8, "number of frequency bands")
    flags.DEFINE_integer("max_real", 0, "use at most this many real images (0: all)")
    app.run(main)
