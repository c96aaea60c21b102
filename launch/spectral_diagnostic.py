"""Spectral diagnostic of a distilled set (UniDD view): FFC spectra and FLC band energies
(jaxdd.bench.spectral computes, jaxdd.viz draws). Writes <out>.png and <out>.json.

    # a CFM run: the network is its teacher (read from the run's squeeze dir)
    python launch/spectral_diagnostic.py --cfm_workdir=/tmp/cfm --out=/tmp/cfm/spectral

    # any saved set (jaxdd.io.save_synthetic: TM, FreD, DDiF, NSD, CFM) through a freshly
    # initialized network (the set's student model unless --model is given)
    python launch/spectral_diagnostic.py --synthetic=workdirs/tm_pixel-default/synthetic.msgpack \
        --out=/tmp/tm_spectral

The real data is loaded with the dataset settings stored in the set's metadata (ZCA
included), or with --dataset / --resolution.
"""
import os

# Small LAPACK calls (the (Psi + beta I) solves on CPU) run ~1000x slower when OpenBLAS
# threads compete for busy cores. Must be set before numpy / jax load OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from absl import app, flags  # noqa: E402

_SYN = flags.DEFINE_string("synthetic", "", "a synthetic.msgpack (jaxdd.io.save_synthetic)")
_CFM = flags.DEFINE_string("cfm_workdir", "", "a CFM workdir (uses its teacher and statistics)")
_OUT = flags.DEFINE_string("out", "", "output prefix (writes <out>.png and <out>.json)")
_DATASET = flags.DEFINE_string("dataset", "", "dataset name if the set has no metadata")
_RES = flags.DEFINE_integer("resolution", 0, "dataset resolution override")
_MODEL = flags.DEFINE_string("model", "", "network for a non-CFM set (default: the set's model)")
_SEED = flags.DEFINE_integer("seed", 0, "init seed of the network (non-CFM sets)")
_BANDS = flags.DEFINE_integer("bands", 8, "number of frequency bands")
_MAX_REAL = flags.DEFINE_integer("max_real", 0, "use at most this many real images (0: all)")


def main(argv):
    del argv
    from jaxdd.bench import spectral
    from jaxdd.viz import write_spectral_report

    if _CFM.value:
        report = spectral.cfm_workdir_report(_CFM.value, _SYN.value or None, bands=_BANDS.value)
        out = _OUT.value or os.path.join(_CFM.value, "spectral")
    elif _SYN.value:
        report = spectral.synthetic_report(
            _SYN.value, dataset=_DATASET.value or None, resolution=_RES.value or None,
            model=_MODEL.value or None, seed=_SEED.value, bands=_BANDS.value,
            max_real=_MAX_REAL.value)
        out = _OUT.value or os.path.splitext(_SYN.value)[0] + "_spectral"
    else:
        raise app.UsageError("give --synthetic=path/to/synthetic.msgpack (or --cfm_workdir)")
    png, js = write_spectral_report(report, out)
    print(f"[spectral] {png}\n[spectral] {js}")
    print("\n".join(spectral.summary_lines(report)))


if __name__ == "__main__":
    app.run(main)
