"""tfds sources of the other modalities: MiniUCF video ('miniucf', tfds 'ucf101') and audio
spectrograms ('mini_speech_commands' from tfds 'speech_commands', 'spoken_digit').
Part of :mod:`jaxdd.data.datasets`; read with tfds.data_source like the image sources.

tfds builds the Audio and Video features of these datasets with tensorflow, so reading them
(and preparing them: tfds.data_source(name, download=True); ucf101 also needs ffmpeg)
needs `pip install tensorflow` beside tensorflow-datasets. Absent data fail at once with
DatasetNotPreparedError saying so.

MiniUCF (the DDiF paper, App. B.1: "sampled to 16 frames, cropped and resized to 112x112"):
  * the 50 classes of the authors' split file (aailab-kaist/DDiF @ b628e7b,
    Video/distill_utils/data/UCF101/ucf50_splits1.csv: `MINIUCF_CLASSES`, labels in their
    sorted order as the authors' class_2_idx, Video/distill_utils/dataset.py:353-355);
  * its train / test membership is UCF101's official split 1 (train groups 8-25, test
    groups 1-7 in that file), which is tfds 'ucf101/ucf101_1' train / test: read from there;
  * frames: the authors resize every extracted frame to 160 x 120 and centre-crop 112 x 112
    (Video/distill_utils/resize_mydata.py: cv2.resize, crop offsets (4, 24)); here each frame
    is resized bilinearly (half-pixel centres, no antialiasing, as cv2's INTER_LINEAR) to
    (120 s/112, 160 s/112) and centre-cropped to s x s, s = resolution (default 112), kept
    as uint8 like their JPEG frames;
  * 16 frames 4 apart (dataset.py:20-21, 379-392: skip 4, or length // 16 for short clips).
    The authors draw the clip's start at random on every read; a fixed dataset takes the
    middle clip (jaxdd's choice). `frames` = F changes the count (default 16);
  * normalized with the ImageNet constants (Video/utils.py:279-280).
  Memory: 4,662 train clips at 16 x 112 x 112 x 3 are 11 GB as float32: use frames=8 /
  resolution=56 (1.4 GB) for a smaller run.

Audio (the DDiF paper follows Kim et al., 2022, IDC:
snu-mllab/Efficient-Dataset-Condensation @ 73b8b5e, speech/speech.py, transform_wav.py,
transform_spec.py; the STFT here is jaxdd's own numpy):
  * waveform in [-1, 1] (int16 / 32768), resampled to 16 kHz (IDC's librosa.load(path,
    16000); spoken_digit is 8 kHz: FFT resampling here), cut or zero-padded to 1 s;
  * |STFT|: periodic Hann window of 255, n_fft 255 (128 bins), hop 128, centred with
    zero padding (librosa.stft's default since 0.9.0, February 2022; before it, reflect
    padding: IDC pins no librosa version, and only the two edge frames differ) -> (128, 125);
  * zero-padded to 128 time steps (IDC's F.pad(x, (1, 2))), bilinear to s x s (torch
    interpolate, align_corners False; s = resolution, default 64, IDC's size), log(x + 1e-3);
  * then the affine map log(x + 1e-3) -> [0, 1] with the fixed bounds log(1e-3) and
    log(128 + 1e-3) (the largest |STFT| of a full-scale sine), so that the arrays are
    [0, 1] like every other source; load_dataset's train-statistics standardization then
    gives exactly IDC's standardized input (IDC: the train set's scalar mean / std; the map
    is affine). Array (N, F=s, T=s, 1): frequency rows, time columns.
  * mini_speech_commands: the 8 words of Mini Speech Commands in IDC's label order
    (`SPEECH_WORDS`). Mini Speech Commands is 1000 clips per word of Speech Commands v2;
    tfds has the whole set, so the first 1000 clips of each word in the tfds train split
    (record order) stand in for it, split as IDC: per word, clip i goes to test when
    i % 8 == 0: 875 / 125 per word.
  * spoken_digit: tfds has only a train split (2,500 clips): the deterministic stratified
    split of `arrays._stratified_split` (seed 0, 20 % of each digit to test).
"""
from __future__ import annotations

import numpy as np

from jaxdd.data.arrays import _stratified_split
from jaxdd.data.resize import _resize_bilinear
from jaxdd.data.tfds_reader import DatasetNotPreparedError, _fetch, _open_tfds

# tfds names read (tests swap them for stand-in builders with the same record structure).
_TFDS_NAMES = {"miniucf": "ucf101/ucf101_1", "mini_speech_commands": "speech_commands",
               "spoken_digit": "spoken_digit"}

# aailab-kaist/DDiF @ b628e7b, Video/distill_utils/data/UCF101/ucf50_splits1.csv (the
# distinct `label` values, sorted: the authors' class order).
MINIUCF_CLASSES = (
    "ApplyEyeMakeup", "BalanceBeam", "BandMarching", "BaseballPitch", "Basketball",
    "BasketballDunk", "Biking", "Billiards", "BlowingCandles", "Bowling", "BreastStroke",
    "CleanAndJerk", "CliffDiving", "CricketShot", "Diving", "FloorGymnastics", "FrisbeeCatch",
    "GolfSwing", "HammerThrow", "HighJump", "HorseRace", "HorseRiding", "HulaHoop",
    "IceDancing", "JumpingJack", "Knitting", "MilitaryParade", "Mixing", "ParallelBars",
    "PlayingPiano", "PlayingViolin", "PoleVault", "PommelHorse", "Punch", "Rafting", "Rowing",
    "SkateBoarding", "Skiing", "Skijet", "SkyDiving", "SoccerPenalty", "StillRings",
    "SumoWrestling", "Surfing", "Swing", "TennisSwing", "TrampolineJumping", "UnevenBars",
    "VolleyballSpiking", "WritingOnBoard")
# IDC speech/speech.py CLASSES (its label order).
SPEECH_WORDS = ("yes", "no", "go", "stop", "left", "right", "up", "down")
_PER_WORD, _TEST_EVERY = 1000, 8
_SR, _NFFT, _HOP, _EPS = 16000, 255, 128, 1e-3
_LOG_LO, _LOG_HI = np.log(_EPS), np.log(128.0 + _EPS)


def _open(key, split, data_dir, download):
    name = _TFDS_NAMES[key]
    if name.startswith("ucf101"):
        import tensorflow_datasets.video  # noqa: F401  (registers the ucf101 builder)
    try:
        return _open_tfds(name, split, data_dir, download)
    except DatasetNotPreparedError as e:
        cause = e.__cause__
        if isinstance(cause, ImportError) and "tensorflow" in str(cause):
            raise DatasetNotPreparedError(
                f"{e}\ntfds builds the audio / video features of {name!r} with tensorflow: "
                f"reading them (and preparing them) needs `pip install tensorflow` besides "
                f"tensorflow-datasets" + (" (and ffmpeg to prepare ucf101)."
                                          if name.startswith("ucf101") else ".")) from cause
        raise


def _records(source, chunk=256):
    for start in range(0, len(source), chunk):
        yield from _fetch(source, list(range(start, min(len(source), start + chunk))))


def _label_names(source):
    return tuple(source.dataset_info.features["label"].names)


# ----------------------------------------------------------------------------- video


def clip_indices(length: int, frames: int = 16, gap: int = 4) -> np.ndarray:
    """`frames` frame indices `gap` apart (gap = length // frames when the clip is shorter
    than frames * gap, at least 1), the middle such clip; short clips repeat their last
    frame."""
    skip = gap if length >= frames * gap else max(length // frames, 1)
    span = (frames - 1) * skip + 1
    start = max((length - span) // 2, 0)
    return np.minimum(start + skip * np.arange(frames), length - 1)


def video_frames(video: np.ndarray, frames: int = 16, side: int = 112) -> np.ndarray:
    """uint8 (T, H, W, 3) -> uint8 (frames, side, side, 3): the middle clip, each frame
    resized to (120 side/112, 160 side/112) and centre-cropped (see the module doc)."""
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[0] == 0:
        raise ValueError(f"a video must be (T, H, W, C) with T >= 1, got {video.shape}")
    h, w = int(round(120 * side / 112)), int(round(160 * side / 112))
    top, left = (h - side) // 2, (w - side) // 2
    out = []
    for i in clip_indices(video.shape[0], frames):
        f = _resize_bilinear(video[i].astype(np.float32), h, w)
        out.append(f[top:top + side, left:left + side])
    return np.clip(np.rint(np.stack(out)), 0, 255).astype(np.uint8)


def _load_miniucf(data_dir, download, side, frames):
    side = 112 if side is None else int(side)
    frames = 16 if frames is None else int(frames)
    if side < 1 or frames < 1:
        raise ValueError(f"miniucf: resolution and frames must be >= 1, got {side}, {frames}")
    out = []
    for split in ("train", "test"):
        source = _open("miniucf", split, data_dir, download)
        names = _label_names(source)
        ours = {i: MINIUCF_CLASSES.index(n) for i, n in enumerate(names)
                if n in MINIUCF_CLASSES}
        xs, ys = [], []
        for rec in _records(source):
            lab = int(np.asarray(rec["label"]))
            if lab in ours:
                xs.append(video_frames(rec["video"], frames, side))
                ys.append(ours[lab])
        if not xs:
            raise ValueError(f"{_TFDS_NAMES['miniucf']}:{split} has no clip of the MiniUCF "
                             f"classes")
        out += [np.stack(xs), np.asarray(ys, np.int32)]
    return (*out, MINIUCF_CLASSES)


# ----------------------------------------------------------------------------- audio


def resample(wave: np.ndarray, rate: int, target: int = _SR) -> np.ndarray:
    """FFT resampling of a 1-D waveform from `rate` to `target` Hz."""
    wave = np.asarray(wave, np.float64)
    if rate == target or wave.size == 0:
        return wave
    n_out = int(round(wave.size * target / rate))
    spec = np.fft.rfft(wave)
    keep = min(spec.size, n_out // 2 + 1)
    out = np.zeros(n_out // 2 + 1, complex)
    out[:keep] = spec[:keep]
    return np.fft.irfft(out, n_out) * (n_out / wave.size)


def stft_magnitude(wave: np.ndarray) -> np.ndarray:
    """|STFT| of a 1-D waveform: periodic Hann 255, n_fft 255, hop 128, centred with zero
    padding -> (128 bins, frames) float64."""
    wave = np.asarray(wave, np.float64)
    pad = _NFFT // 2
    x = np.pad(wave, pad)
    frames = 1 + (x.size - _NFFT) // _HOP
    win = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(_NFFT) / _NFFT)
    idx = np.arange(frames)[:, None] * _HOP + np.arange(_NFFT)[None, :]
    return np.abs(np.fft.rfft(x[idx] * win, axis=-1)).T


def spectrogram(audio, rate: int, side: int = 64) -> np.ndarray:
    """Integer PCM (or float in [-1, 1]) samples at `rate` Hz -> float32 (side, side) in
    [0, 1]: IDC's log-magnitude spectrogram (module doc), affinely mapped to [0, 1]."""
    a = np.asarray(audio).reshape(-1)
    wave = a / 32768.0 if np.issubdtype(a.dtype, np.integer) else a.astype(np.float64)
    wave = resample(wave, rate)[:_SR]
    wave = np.pad(wave, (0, _SR - wave.size))
    mag = np.pad(stft_magnitude(wave), ((0, 0), (1, 2)))  # (128, 128)
    mag = _resize_bilinear(mag[..., None].astype(np.float32), side, side)[..., 0]
    log = np.log(np.maximum(mag, 0.0) + _EPS)
    return np.clip((log - _LOG_LO) / (_LOG_HI - _LOG_LO), 0.0, 1.0).astype(np.float32)


def _rate(source, default):
    try:
        return int(source.dataset_info.features["audio"].sample_rate or default)
    except Exception:  # noqa: BLE001 - stand-in features carry no sample rate
        return default


def _load_speech_commands(data_dir, download, side):
    source = _open("mini_speech_commands", "train", data_dir, download)
    names = _label_names(source)
    missing = [w for w in SPEECH_WORDS if w not in names]
    if missing:
        raise ValueError(f"{_TFDS_NAMES['mini_speech_commands']} has no label {missing}")
    ours = {names.index(w): c for c, w in enumerate(SPEECH_WORDS)}
    rate = _rate(source, 16000)
    seen = np.zeros(len(SPEECH_WORDS), np.int64)
    parts = {True: ([], []), False: ([], [])}  # test? -> (x, y)
    for rec in _records(source):
        c = ours.get(int(np.asarray(rec["label"])))
        if c is None or seen[c] >= _PER_WORD:
            continue
        xs, ys = parts[bool(seen[c] % _TEST_EVERY == 0)]
        xs.append(spectrogram(rec["audio"], rate, side))
        ys.append(c)
        seen[c] += 1
        if seen.min() >= _PER_WORD:
            break
    if (seen < 2).any():
        raise ValueError(f"{_TFDS_NAMES['mini_speech_commands']}: too few clips of some words "
                         f"({dict(zip(SPEECH_WORDS, seen.tolist()))})")
    (x_te, y_te), (x_tr, y_tr) = parts[True], parts[False]
    return (np.stack(x_tr)[..., None], np.asarray(y_tr, np.int32),
            np.stack(x_te)[..., None], np.asarray(y_te, np.int32), SPEECH_WORDS)


def _load_spoken_digit(data_dir, download, side):
    source = _open("spoken_digit", "train", data_dir, download)
    rate = _rate(source, 8000)
    xs, ys = [], []
    for rec in _records(source):
        xs.append(spectrogram(rec["audio"], rate, side))
        ys.append(int(np.asarray(rec["label"])))
    x, y = np.stack(xs)[..., None], np.asarray(ys, np.int32)
    tr, te = _stratified_split(y)
    return x[tr], y[tr], x[te], y[te], _label_names(source)


def load_media(name, *, data_dir=None, download=False, side=None, frames=None):
    """(x_train, y_train, x_test, y_test, class_names) of 'miniucf' (uint8 video),
    'mini_speech_commands' or 'spoken_digit' (float32 spectrograms in [0, 1])."""
    key = str(name).lower().split("/")[0]
    if key == "miniucf":
        return _load_miniucf(data_dir, download, side, frames)
    side = 64 if side is None else int(side)
    if key == "mini_speech_commands":
        return _load_speech_commands(data_dir, download, side)
    if key == "spoken_digit":
        return _load_spoken_digit(data_dir, download, side)
    raise ValueError(f"unknown media dataset {name!r}; known: {', '.join(_TFDS_NAMES)}")
