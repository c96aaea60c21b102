"""Embedded offline sets of the other modalities, made deterministically (fixed seeds) from
data that ship with the dependencies (scikit-learn's digits) or synthesized with real class
structure, so that every modality runs and is testable with no download:

    'digits_video'  (N, 8, 16, 16, 3)   each digit drifts along a short straight path
                                        near the centre of 8 frames of 16 x 16, lightly
                                        tinted, light noise
    'digits_voxel'  (N, 16, 16, 16, 1)  each digit extruded into a slab around the middle
                                        of a 16^3 volume (random thickness, small depth /
                                        position jitter and shear)
    'synth_speech'  (N, 32, 32, 1)      8 classes of log-mel spectrograms of synthesized
                                        sounds (formant tones, chirps, onsets, vibrato,
                                        fricative noise, a diphthong), random pitch, time
                                        shift, amplitude, phases and noise, each over a
                                        quieter sound of another class

Values lie in [0, 1] like pixels (load_dataset then standardizes with the train split's
statistics, as for 'digits'). Splits: the digits' deterministic stratified split
(`arrays._stratified_split`: seed 0, round(20 %) of each class to test), so the two digit
sets keep the digits' own train / test membership: 1438 / 359 examples; 'synth_speech' has
200 examples per class: 1280 / 320. All of this is jaxdd's own construction (no published
system uses these sets); each builds in well under a second.
"""
from __future__ import annotations

import functools

import numpy as np

from jaxdd.data.arrays import _stratified_split
from jaxdd.data.resize import _resize_bilinear

__all__ = ["load_embedded", "EMBEDDED_SHAPES", "SPEECH_CLASSES"]

EMBEDDED_SHAPES = {"digits_video": (8, 16, 16, 3), "digits_voxel": (16, 16, 16, 1),
                   "synth_speech": (32, 32, 1)}
SPEECH_CLASSES = ("formant_low", "formant_high", "chirp_up", "chirp_down", "two_onsets",
                  "vibrato", "fricative", "diphthong")
_SEEDS = {"digits_video": 280, "digits_voxel": 281, "synth_speech": 282}


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images.astype(np.float32) / np.float32(16.0)), d.target.astype(np.int32)


def _upsampled(img8: np.ndarray, sizes) -> dict:
    """{s: (N, s, s)} bilinear upsamplings of the (N, 8, 8) digits (torch-style taps)."""
    stack = np.moveaxis(img8, 0, -1)  # (8, 8, N): the batch as channels
    return {s: np.moveaxis(_resize_bilinear(stack, s, s), -1, 0).clip(0.0, 1.0)
            for s in sizes}


@functools.lru_cache(maxsize=None)
def _digits_video():
    """Each digit (upsampled to 10-12 px, lightly tinted) drifts slowly near the frame's
    centre: it starts within 1 px of the centre and moves up to 2 px in each direction over
    the 8 frames (a straight path, whole-pixel steps), on light noise. The class is the
    digit; the drift, size and tint are the nuisances."""
    x8, y = _digits()
    rng = np.random.default_rng(_SEEDS["digits_video"])
    sizes = (10, 11, 12)
    ups = _upsampled(x8, sizes)
    t, side = 8, 16
    out = np.zeros((len(y), t, side, side, 3), np.float32)
    size = rng.choice(sizes, len(y))
    tint = rng.uniform(0.7, 1.0, (len(y), 3)).astype(np.float32)
    tint /= tint.max(axis=1, keepdims=True)  # the brightest channel at full intensity
    for i in range(len(y)):
        s = int(size[i])
        centre = (side - s) / 2.0
        start = centre + rng.uniform(-1.0, 1.0, 2)
        end = start + rng.uniform(-2.0, 2.0, 2)
        glyph = ups[s][i][..., None] * tint[i]
        for f in range(t):
            r, c = np.clip(np.rint(start + (end - start) * f / (t - 1)), 0,
                           side - s).astype(int)
            out[i, f, r:r + s, c:c + s] = np.maximum(out[i, f, r:r + s, c:c + s], glyph)
    out += rng.normal(0.0, 0.03, out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0), y


@functools.lru_cache(maxsize=None)
def _digits_voxel():
    """Each digit (upsampled to 11 px) extruded into a slab of 4-8 slices around the
    volume's middle depth (offset within 1 slice), its rows / columns within 1 voxel of the
    centre and sheared by up to 0.3 voxel per slice, on light noise. The class is the digit."""
    x8, y = _digits()
    rng = np.random.default_rng(_SEEDS["digits_voxel"])
    s, side = 11, 16
    ups = _upsampled(x8, (s,))[s]
    out = np.zeros((len(y), side, side, side, 1), np.float32)
    for i in range(len(y)):
        thick = int(rng.integers(4, 9))
        d0 = int(np.clip((side - thick) // 2 + rng.integers(-1, 2), 0, side - thick))
        r0, c0 = (side - s) / 2.0 + rng.uniform(-1.0, 1.0, 2)
        shear = rng.uniform(-0.3, 0.3, 2)  # glyph shift per depth slice (rows, columns)
        for k in range(thick):
            r, c = np.clip(np.rint(np.array([r0, c0]) + shear * (k - thick / 2)), 0,
                           side - s).astype(int)
            out[i, d0 + k, r:r + s, c:c + s, 0] = ups[i]
    out += rng.normal(0.0, 0.02, out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0), y


# synth_speech: an 8 kHz waveform of 32 hops, an STFT (Hann 256, hop 128, no centring:
# 32 frames), 32 triangular mel bands, log power mapped from [_DB_FLOOR, 0] dB to [0, 1].
_SR, _NFFT, _HOP, _BANDS, _FRAMES = 8000, 256, 128, 32, 32
_DB_FLOOR = -80.0
_PER_CLASS = 200


def _mel_filters(n_bands=_BANDS, n_fft=_NFFT, sr=_SR, fmin=60.0):
    """(n_bands, n_fft // 2 + 1) triangular filters equally spaced on the mel scale."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    inv = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = inv(np.linspace(mel(fmin), mel(sr / 2), n_bands + 2))
    freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs - lo) / (mid - lo)
    down = (hi - freqs) / (hi - mid)
    return np.clip(np.minimum(up, down), 0.0, None)


def log_mel(wave: np.ndarray) -> np.ndarray:
    """Waveforms (N, L) at 8 kHz, L = (frames + 1) * 128 -> (N, 32 bands, frames) in [0, 1]:
    |STFT|^2 (periodic Hann 256, hop 128, no padding) pooled by 32 mel triangles, in dB
    relative to the loudest possible band power, [-80, 0] dB -> [0, 1]."""
    n, length = wave.shape
    frames = (length - _NFFT) // _HOP + 1
    win = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(_NFFT) / _NFFT)).astype(np.float32)
    idx = np.arange(frames)[:, None] * _HOP + np.arange(_NFFT)[None, :]
    spec = np.fft.rfft(wave.astype(np.float32)[:, idx] * win, axis=-1)  # (N, frames, bins)
    power = spec.real ** 2 + spec.imag ** 2
    bands = (power @ _mel_filters().T.astype(np.float32)).astype(np.float64)
    db = 10.0 * np.log10(bands / (_NFFT / 4.0) ** 2 + 1e-12)
    return np.clip((db - _DB_FLOOR) / -_DB_FLOOR, 0.0, 1.0).transpose(0, 2, 1)


def _speech_wave(c: int, rng, t: np.ndarray) -> np.ndarray:
    """One waveform of class c over times t (s); random pitch, shift, phases."""
    pitch = rng.uniform(0.75, 1.3)
    shift = rng.uniform(-0.12, 0.12)
    dur = t[-1]
    u = np.clip((t - shift) / dur, 0.0, 1.0)  # the pattern's own clock, 0..1
    env = np.clip(u / 0.08, 0, 1) * np.clip((0.85 - u) / 0.1, 0, 1)  # attack / release
    phase = lambda: rng.uniform(0, 2 * np.pi)  # noqa: E731

    def harmonic(f0, formants, bw=250.0):
        f = f0 * pitch * np.arange(1, int(3800 / (f0 * pitch)))
        gain = sum(np.exp(-0.5 * ((f - fm * pitch) / bw) ** 2) for fm in formants)
        keep = gain > 0.02  # the harmonics near a formant (others are inaudible here)
        f, gain = f[keep], gain[keep]
        ph = rng.uniform(0, 2 * np.pi, (f.size, 1)).astype(np.float32)
        arg = (2 * np.pi * f[:, None]).astype(np.float32) * t + ph
        return gain.astype(np.float32) @ np.sin(arg)

    def chirp(f_start, f_end):
        f = (f_start + (f_end - f_start) * u) * pitch
        return np.sin((2 * np.pi * np.cumsum(f, dtype=np.float64) / _SR + phase())
                      .astype(np.float32))

    if c == 0:
        w = harmonic(140.0, (500.0, 1400.0)) * env
    elif c == 1:
        w = harmonic(140.0, (850.0, 2600.0)) * env
    elif c == 2:
        w = chirp(300.0, 2800.0) * env
    elif c == 3:
        w = chirp(2800.0, 300.0) * env
    elif c == 4:
        pips = sum(np.exp(-0.5 * ((u - m) / 0.05) ** 2) for m in (0.2, 0.6))
        w = np.sin(2 * np.pi * 1000.0 * pitch * t + phase()) * pips
    elif c == 5:
        f = (1300.0 + 250.0 * np.sin(2 * np.pi * 7.0 * t + phase())) * pitch
        w = np.sin((2 * np.pi * np.cumsum(f, dtype=np.float64) / _SR + phase())
                   .astype(np.float32)) * env
    elif c == 6:
        spec = np.fft.rfft(rng.normal(size=t.shape))
        freqs = np.fft.rfftfreq(t.size, 1.0 / _SR)
        spec *= (freqs > 2400 * pitch) & (freqs < 3700)
        w = np.fft.irfft(spec, t.size) * env
        w /= np.abs(w).max() + 1e-9
    else:  # a formant gliding from low to high (a diphthong)
        f = 140.0 * pitch * np.arange(1, int(3800 / (140.0 * pitch)))
        fm = (500.0 + 1700.0 * u) * pitch  # (L,) the formant's track
        f = f[(f > 200.0 * pitch) & (f < 2900.0 * pitch)]  # the harmonics it passes
        coarse = fm[::16]  # the gains change slowly: on every 16th sample, then held
        gain = np.repeat(np.exp(-0.5 * ((f[:, None] - coarse[None, :]) / 250.0) ** 2), 16,
                         axis=1)[:, :t.size]  # (H, L)
        ph = rng.uniform(0, 2 * np.pi, (f.size, 1)).astype(np.float32)
        w = (gain.astype(np.float32)
             * np.sin((2 * np.pi * f[:, None]).astype(np.float32) * t + ph)).sum(0) * env
    return (w / (np.abs(w).max() + 1e-9)).astype(np.float32)


def _speech_example(c: int, rng, t: np.ndarray) -> np.ndarray:
    """Class c's sound at a random level, over a quieter sound of another class (0.25-0.6
    of its level) and background noise: the other sound and the noise are the nuisances."""
    other = (c + int(rng.integers(1, len(SPEECH_CLASSES)))) % len(SPEECH_CLASSES)
    level = rng.uniform(0.3, 1.0)
    w = level * (_speech_wave(c, rng, t) + rng.uniform(0.25, 0.6) * _speech_wave(other, rng, t))
    return (w + rng.normal(0.0, rng.uniform(0.005, 0.05), t.shape)).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _synth_speech():
    rng = np.random.default_rng(_SEEDS["synth_speech"])
    length = (_FRAMES - 1) * _HOP + _NFFT
    t = (np.arange(length) / _SR).astype(np.float32)
    y = np.repeat(np.arange(len(SPEECH_CLASSES), dtype=np.int32), _PER_CLASS)
    waves = np.stack([_speech_example(int(c), rng, t) for c in y])
    return log_mel(waves)[..., None].astype(np.float32), y


_BUILDERS = {"digits_video": _digits_video, "digits_voxel": _digits_voxel,
             "synth_speech": _synth_speech}


def load_embedded(name: str):
    """(x_train, y_train, x_test, y_test, class_names) of an embedded non-image set; x float32
    in [0, 1], (N, *grid, C) (`EMBEDDED_SHAPES`)."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown embedded set {name!r}; known: {', '.join(_BUILDERS)}")
    x, y = _BUILDERS[name]()
    tr, te = _stratified_split(y)
    names = SPEECH_CLASSES if name == "synth_speech" else tuple(str(i) for i in range(10))
    return x[tr], y[tr], x[te], y[te], names
