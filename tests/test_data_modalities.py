"""Non-image data: the embedded video / voxel / audio sets, Dataset.modality through the
shared preprocessing tail, the npz loader at any rank, and the modality's clear errors."""
import numpy as np
import pytest

from jaxdd.data import available_datasets, load_dataset, preprocessing_id
from jaxdd.data.embedded import EMBEDDED_SHAPES, load_embedded

EMBEDDED = {"digits_video": ("video", 10, 1438, 359), "digits_voxel": ("voxel", 10, 1438, 359),
            "synth_speech": ("audio", 8, 1280, 320)}


def _nearest_centroid_accuracy(tr, te):
    a = tr.images.reshape(len(tr), -1)
    b = te.images.reshape(len(te), -1)
    cents = np.stack([a[tr.labels == c].mean(0) for c in range(tr.num_classes)])
    d = ((b[:, None, :] - cents[None]) ** 2).sum(-1)
    return float((d.argmin(1) == te.labels).mean())


@pytest.mark.parametrize("name", sorted(EMBEDDED))
def test_embedded_sets(name):
    modality, k, n_tr, n_te = EMBEDDED[name]
    assert name in available_datasets()
    tr, te = load_dataset(name)
    assert tr.images.shape == (n_tr,) + EMBEDDED_SHAPES[name]
    assert te.images.shape == (n_te,) + EMBEDDED_SHAPES[name]
    assert tr.images.dtype == np.float32 and tr.labels.dtype == np.int32
    assert tr.modality == modality and te.modality == modality and tr.num_classes == k
    assert tr.image_shape == EMBEDDED_SHAPES[name]
    assert tr.preprocessing == f"standardize-train-stats;modality={modality}"
    assert preprocessing_id(name) == tr.preprocessing
    # every class in both splits; standardized with the train split's statistics
    assert (np.bincount(tr.labels, minlength=k) > 0).all()
    assert (np.bincount(te.labels, minlength=k) > 0).all()
    c = tr.images.shape[-1]
    flat = tr.images.reshape(-1, c).astype(np.float64)  # float32 sums drift at 3e6 values
    np.testing.assert_allclose(flat.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(flat.std(0), 1.0, atol=1e-3)
    raw = te.denormalize(te.images)
    assert raw.min() >= 0.0 and raw.max() <= 1.0 and raw.shape == te.images.shape
    # deterministic
    x_tr, y_tr, *_ = load_embedded(name)
    x2, y2, *_ = load_embedded(name)
    np.testing.assert_array_equal(x_tr, x2)
    np.testing.assert_array_equal(y_tr, y2)
    # real class structure: a nearest-centroid classifier is far above chance
    acc = _nearest_centroid_accuracy(tr, te)
    assert acc > 2.0 / k, (name, acc)


def test_digit_sets_keep_the_digits_split():
    from jaxdd.data.arrays import _load_digits
    _, y_tr, _, y_te, _ = _load_digits()
    for name in ("digits_video", "digits_voxel"):
        _, a, _, b, names = load_embedded(name)
        np.testing.assert_array_equal(a, y_tr)
        np.testing.assert_array_equal(b, y_te)
        assert names == tuple(str(i) for i in range(10))


def test_image_ids_unchanged():
    """Existing image buffers keep matching: no modality in image ids."""
    assert preprocessing_id("digits") == "standardize-train-stats"
    assert preprocessing_id("cifar10") == "standardize-authors-constants"
    assert preprocessing_id("cifar10", zca=True) == "zca01-eps0.1"
    assert preprocessing_id("imagenette") == "standardize-authors-constants;resize=squash"
    assert preprocessing_id("my.npz") == "standardize-train-stats"
    assert preprocessing_id("digits", modality="video") == "standardize-train-stats;modality=video"
    with pytest.raises(ValueError, match="modality"):
        preprocessing_id("digits", modality="sound")
    tr, _ = load_dataset("digits")
    assert tr.modality == "image"


def test_non_image_ids_and_defaults():
    assert preprocessing_id("miniucf") == "standardize-authors-constants;modality=video"
    assert preprocessing_id("mini_speech_commands") == "standardize-train-stats;modality=audio"
    # the authors feed raw voxels: not standardized unless asked
    assert preprocessing_id("modelnet10") == "pixels01;modality=voxel"
    assert preprocessing_id("3dmnist", normalize=True) == "standardize-train-stats;modality=voxel"


def test_zca_and_resolution_refused_on_other_modalities():
    with pytest.raises(ValueError, match="ZCA whitening is an image preprocessing"):
        load_dataset("digits_voxel", zca=True)
    with pytest.raises(ValueError, match="resolution=8 asks to resample voxel"):
        load_dataset("digits_voxel", resolution=8)
    tr, _ = load_dataset("digits_voxel", resolution=16)  # its own side: nothing to do
    assert tr.images.shape[1:] == (16, 16, 16, 1)
    with pytest.raises(ValueError, match="audio"):
        load_dataset("synth_speech", resolution=64)
    v, _ = load_dataset("digits_video", resolution=8, normalize=False)  # frames resized
    assert v.images.shape[1:] == (8, 8, 8, 3) and v.modality == "video"
    assert 0.0 <= v.images.min() and v.images.max() <= 1.0
    with pytest.raises(ValueError, match="frames"):
        load_dataset("digits_video", frames=4)


def test_npz_any_rank(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), 10)
    vox = rng.random((20, 4, 4, 4, 1)).astype(np.float32)
    vid = rng.integers(0, 256, (20, 3, 4, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "vox.npz", images=vox, labels=y)
    np.savez(tmp_path / "vid.npz", images=vid, labels=y, test_images=vid[:4],
             test_labels=y[:4])
    np.savez(tmp_path / "aud.npz", images=vox,
             labels=y, modality="audio")
    np.savez(tmp_path / "aud3.npz", images=rng.random((20, 4, 5)), labels=y,
             modality="audio")
    np.savez(tmp_path / "vid1.npz", images=vox, labels=y, modality="video")

    tr, te = load_dataset(str(tmp_path / "vox.npz"), normalize=False)
    assert tr.modality == "voxel" and tr.images.shape == (16, 4, 4, 4, 1) and len(te) == 4
    np.testing.assert_allclose(np.sort(np.concatenate([tr.images, te.images]).ravel()),
                               np.sort(vox.ravel()))
    assert tr.preprocessing == "pixels01"  # npz ids stay name-based (content is hashed)
    tr, te = load_dataset("npz", path=tmp_path / "vid.npz")
    assert tr.modality == "video" and tr.images.shape == (20, 3, 4, 4, 3)
    assert tr.mean.shape == (3,)
    tr, _ = load_dataset(str(tmp_path / "aud3.npz"))
    assert tr.modality == "audio" and tr.images.shape[1:] == (4, 5, 1)
    tr, _ = load_dataset(str(tmp_path / "vid1.npz"))  # declared video although C == 1
    assert tr.modality == "video"

    with pytest.raises(ValueError, match="modality 'audio' needs 4-D"):
        load_dataset(str(tmp_path / "aud.npz"))
    np.savez(tmp_path / "bad.npz", images=rng.random((20, 2, 2, 2, 2, 1)), labels=y)
    with pytest.raises(ValueError, match="5-D"):
        load_dataset(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "bad2.npz", images=vox, labels=y, modality="sound")
    with pytest.raises(ValueError, match="not one of"):
        load_dataset(str(tmp_path / "bad2.npz"))
    np.savez(tmp_path / "bad3.npz", images=vox, labels=y, test_images=vox[:2, :2],
             test_labels=y[:2])
    with pytest.raises(ValueError, match="test_images"):
        load_dataset(str(tmp_path / "bad3.npz"))


# ----------------------------------------------------------------------------- tfds media
# tfds builds the Audio / Video features of speech_commands, spoken_digit and ucf101 with
# tensorflow, which jaxdd does not install: the readers are tested through
# tfds.testing.mock_data on stand-in builders whose records have the same structure as those
# datasets' decoded records ('audio' int16 (L,), 'video' uint8 (T, H, W, 3), 'label').

_SPEECH_LABELS = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes",
                  "_silence_", "_unknown_"]  # tfds speech_commands' label names


def _standin(class_name, feature_name, feature, labels):
    import tensorflow_datasets as tfds

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            feature_name: feature, "label": tfds.features.ClassLabel(names=labels)}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(), "test": self._generate_examples()}

    def _generate_examples(self):
        yield 0, {}

    body = {"VERSION": tfds.core.Version("1.0.0"), "_info": _info,
            "_split_generators": _split_generators, "_generate_examples": _generate_examples}
    return type(class_name, (tfds.core.GeneratorBasedBuilder,), body, skip_registration=True)


@pytest.fixture
def media_standins(monkeypatch):
    import tensorflow_datasets as tfds

    from jaxdd.data import media

    ucf = list(media.MINIUCF_CLASSES[:3]) + ["Archery", "YoYo"]  # 2 non-MiniUCF classes
    builders = {
        "miniucf": _standin("JaxddStandinMiniucf", "video",
                            tfds.features.Tensor(shape=(None, 24, 32, 3), dtype=np.uint8), ucf),
        "mini_speech_commands": _standin("JaxddStandinMiniSpeechCommands", "audio",
                                         tfds.features.Tensor(shape=(None,), dtype=np.int16),
                                         _SPEECH_LABELS),
        "spoken_digit": _standin("JaxddStandinSpokenDigit", "audio",
                                 tfds.features.Tensor(shape=(None,), dtype=np.int16),
                                 [str(i) for i in range(10)]),
    }
    names = {}
    for key, cls in builders.items():
        names[key] = cls.name  # e.g. 'jaxdd_standin_miniucf'
        monkeypatch.setitem(tfds.core.registered._DATASET_REGISTRY, cls.name, cls)
    monkeypatch.setattr(media, "_TFDS_NAMES", names)
    return media


def test_tfds_media_through_mock_data(media_standins, tmp_path):
    import tensorflow_datasets as tfds

    media = media_standins
    with tfds.testing.mock_data(num_examples=160):
        tr, te = load_dataset("miniucf", data_dir=tmp_path, frames=4, resolution=16)
        assert tr.images.shape[1:] == (4, 16, 16, 3) and tr.modality == "video"
        assert set(tr.labels) <= {0, 1, 2} and tr.class_names == media.MINIUCF_CLASSES
        assert len(tr) < 160  # the non-MiniUCF classes are left out
        assert tr.preprocessing == "standardize-authors-constants;modality=video"
        np.testing.assert_allclose(tr.mean, [0.485, 0.456, 0.406])

        tr, te = load_dataset("mini_speech_commands", data_dir=tmp_path)
        assert tr.images.shape[1:] == (64, 64, 1) and tr.modality == "audio"
        assert tr.class_names == ("yes", "no", "go", "stop", "left", "right", "up", "down")
        # IDC's split: clip i of a word goes to test when i % 8 == 0
        n_tr, n_te = np.bincount(tr.labels, minlength=8), np.bincount(te.labels, minlength=8)
        np.testing.assert_array_equal(n_te, (n_tr + n_te + 7) // 8)
        assert tr.preprocessing == "standardize-train-stats;modality=audio"

        tr, te = load_dataset("spoken_digit", data_dir=tmp_path, resolution=32)
        assert tr.images.shape[1:] == (32, 32, 1) and len(tr) + len(te) == 160
        assert tr.class_names == tuple(str(i) for i in range(10))
        raw, _ = load_dataset("spoken_digit", data_dir=tmp_path, resolution=32,
                              normalize=False)
        assert 0.0 <= raw.images.min() and raw.images.max() <= 1.0


def test_unprepared_media_fail_fast(tmp_path):
    import time

    from jaxdd.data import DatasetNotPreparedError

    for name in ("miniucf", "mini_speech_commands", "spoken_digit"):
        t0 = time.perf_counter()
        with pytest.raises(DatasetNotPreparedError) as err:
            load_dataset(name, data_dir=tmp_path)
        assert time.perf_counter() - t0 < 10.0
        assert "download=True" in str(err.value) and "data_dir" in str(err.value)


def test_video_frames_like_the_authors():
    from jaxdd.data.media import clip_indices, video_frames
    from jaxdd.data.resize import _resize_bilinear

    np.testing.assert_array_equal(clip_indices(100, 16), 19 + 4 * np.arange(16))
    np.testing.assert_array_equal(clip_indices(40, 16), 4 + 2 * np.arange(16))  # skip 40//16
    np.testing.assert_array_equal(clip_indices(3, 4), [0, 1, 2, 2])
    rng = np.random.default_rng(0)
    vid = rng.integers(0, 256, (70, 240, 320, 3), dtype=np.uint8)
    out = video_frames(vid, frames=2, side=112)
    assert out.shape == (2, 112, 112, 3) and out.dtype == np.uint8
    # frame 0 of the middle 2-frame clip (index 32): 320x240 -> 160x120, crop at (4, 24)
    ref = _resize_bilinear(vid[32].astype(np.float32), 120, 160)[4:116, 24:136]
    np.testing.assert_array_equal(out[0], np.clip(np.rint(ref), 0, 255).astype(np.uint8))
    with pytest.raises(ValueError, match="T, H, W, C"):
        video_frames(vid[0])


def test_spectrogram_of_a_tone():
    from jaxdd.data.media import spectrogram, stft_magnitude

    t = np.arange(16000) / 16000.0
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * t) * 32767).astype(np.int16)
    mag = stft_magnitude(tone / 32768.0)
    assert mag.shape == (128, 125)  # 255-point window, hop 128, centred; + (1, 2) pad = 128
    assert abs(mag[:, 10:-10].argmax(0) - 1000.0 / (16000.0 / 255)).max() < 1.0
    s = spectrogram(tone, 16000, 64)
    assert s.shape == (64, 64) and s.dtype == np.float32
    assert (s[:, 4:60].argmax(0) == 8).all()  # 1 kHz: bin 16 of 128 -> row 8 of 64
    # an 8 kHz clip is resampled to 16 kHz first: the same tone lands on the same row
    s8 = spectrogram((0.5 * np.sin(2 * np.pi * 1000.0 * t[::2]) * 32767).astype(np.int16),
                     8000, 64)
    assert (s8[:, 4:60].argmax(0) == 8).all()


def test_stft_matches_scipy():
    """The own numpy STFT = scipy's (periodic Hann 255, hop 128, zero-padded centring),
    unscaled like librosa."""
    signal = pytest.importorskip("scipy.signal")  # the 'test' extra installs scipy
    from jaxdd.data.media import stft_magnitude

    x = np.random.default_rng(0).normal(size=16000)
    win = signal.get_window("hann", 255, fftbins=True)
    _, _, z = signal.stft(x, window=win, nperseg=255, noverlap=127, boundary="zeros",
                          padded=False)
    np.testing.assert_allclose(stft_magnitude(x), np.abs(z) * win.sum(), rtol=1e-9,
                               atol=1e-9)
