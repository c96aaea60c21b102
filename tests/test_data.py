"""Tests for jaxdd.data: sources, normalization, ZCA, per-class helpers."""
import io
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from jaxdd.data import (
    AUTHORS_NORMALIZATION,
    CIFAR100_OWN_NORMALIZATION,
    ZCA,
    Dataset,
    DatasetNotPreparedError,
    available_datasets,
    class_indices,
    fit_zca,
    images_by_class,
    load_dataset,
    preprocessing_id,
    random_real,
)
from jaxdd.data.resize import _bilinear_taps, _resize_bilinear, _resize_variable


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# ----------------------------------------------------------------------------- digits


def test_digits_shapes_dtypes_and_split(digits):
    from sklearn.datasets import load_digits

    train, test = digits
    assert isinstance(train, Dataset)
    assert train.images.shape == (1438, 8, 8, 1) and test.images.shape == (359, 8, 8, 1)
    assert train.images.dtype == np.float32 and test.images.dtype == np.float32
    assert train.labels.dtype == np.int32 and test.labels.dtype == np.int32
    assert train.num_classes == 10 and train.image_shape == (8, 8, 1)
    assert train.class_names == tuple(str(i) for i in range(10))
    assert train.zca is None and train.name == "digits"
    for ds in (train, test):
        assert ds.labels.min() == 0 and ds.labels.max() == 9
    # stratified: round(20%) of every class is in test
    y = load_digits().target
    for c in range(10):
        n_c = int((y == c).sum())
        assert (test.labels == c).sum() == round(0.2 * n_c)
        assert (train.labels == c).sum() == n_c - round(0.2 * n_c)
    # train + test are exactly sklearn's images (as multisets of (pixels, label) rows)
    raw = np.concatenate([load_digits().images.reshape(-1, 64) / 16.0, y[:, None]], 1)
    ours = np.concatenate(
        [
            np.concatenate([d.denormalize(d.images).reshape(-1, 64), d.labels[:, None]], 1)
            for d in (train, test)
        ]
    )
    assert ours.shape == raw.shape
    np.testing.assert_allclose(np.unique(ours, axis=0), np.unique(raw, axis=0), atol=1e-5)
    # deterministic
    again, _ = load_dataset("digits")
    np.testing.assert_array_equal(again.images, train.images)
    np.testing.assert_array_equal(again.labels, train.labels)


def test_digits_normalization_uses_train_stats(digits):
    """The embedded digits have no authors' constants: standardized with train statistics."""
    train, test = digits
    assert train.preprocessing == test.preprocessing == "standardize-train-stats"
    np.testing.assert_allclose(train.images.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.images.std(axis=(0, 1, 2)), 1.0, atol=1e-4)
    raw_tr, raw_te = load_dataset("digits", normalize=False)
    assert raw_tr.images.min() >= 0.0 and raw_tr.images.max() <= 1.0
    np.testing.assert_allclose(train.mean, raw_tr.images.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(train.std, raw_tr.images.std(axis=(0, 1, 2)), rtol=1e-4)
    # test split normalized with the TRAIN statistics
    np.testing.assert_allclose(test.images, (raw_te.images - train.mean) / train.std, atol=1e-5)
    np.testing.assert_allclose(test.denormalize(test.images), raw_te.images, atol=1e-6)
    np.testing.assert_allclose(train.normalize(raw_tr.images), train.images, atol=1e-5)


def test_digits_resolution_is_bilinear():
    from PIL import Image

    train, test = load_dataset("digits", resolution=16)
    assert train.images.shape == (1438, 16, 16, 1) and test.images.shape == (359, 16, 16, 1)
    raw8, _ = load_dataset("digits", normalize=False)
    raw16, _ = load_dataset("digits", normalize=False, resolution=16)
    # independent reference: PIL bilinear (half-pixel centres) on float images
    for i in (0, 7):
        ref = Image.fromarray(raw8.images[i, ..., 0], mode="F").resize((16, 16), Image.BILINEAR)
        np.testing.assert_allclose(raw16.images[i, ..., 0], np.asarray(ref), atol=1e-5)
    np.testing.assert_allclose(train.images.mean(), 0.0, atol=1e-5)


def test_resize_variable_squash_and_crop():
    img = np.arange(12 * 8 * 3, dtype=np.float32).reshape(12, 8, 3)
    # 'crop' with the shorter side already at `side`: a pure centre crop (offset 2)
    np.testing.assert_array_equal(_resize_variable(img, 8, "crop"), img[2:10])
    # 'squash' keeps every row / column: a linear ramp stays a linear ramp end to end
    sq = _resize_variable(img, 6, "squash")
    assert sq.shape == (6, 6, 3)
    const = np.full((30, 20, 1), 0.3, np.float32)
    for mode in ("squash", "crop"):
        out = _resize_variable(const, 10, mode)
        assert out.shape == (10, 10, 1)
        np.testing.assert_allclose(out, 0.3, rtol=1e-6)
    # crop of a wide image: shorter side -> 4, longer int(4 * 10 / 5) = 8, offset round(2) = 2
    wide = np.random.default_rng(0).random((5, 10, 1)).astype(np.float32)
    np.testing.assert_allclose(_resize_variable(wide, 4, "crop"),
                               _resize_bilinear(wide, 4, 8)[:, 2:6], rtol=1e-6)


def test_bilinear_taps_half_pixel():
    i0, i1, lam = _bilinear_taps(4, 2)  # downsample x2: sources 0.5 and 2.5
    np.testing.assert_array_equal(i0, [0, 2])
    np.testing.assert_array_equal(i1, [1, 3])
    np.testing.assert_allclose(lam, [0.5, 0.5])
    i0, i1, lam = _bilinear_taps(2, 4)  # upsample: sources -0.25 -> 0 (clamped), 0.25, 0.75, 1.25
    np.testing.assert_array_equal(i0, [0, 0, 0, 1])
    np.testing.assert_array_equal(i1, [1, 1, 1, 1])
    np.testing.assert_allclose(lam, [0.0, 0.25, 0.75, 0.25])  # last: i0 == i1, weight moot


def test_preprocessing_ids_and_stats_options(tmp_path):
    assert preprocessing_id("cifar10") == "standardize-authors-constants"
    assert preprocessing_id("svhn") == "standardize-authors-constants"
    assert preprocessing_id("cifar10", zca=True) == "zca01-eps0.1"
    assert preprocessing_id("cifar10", zca=True, zca_eps=0.05) == "zca01-eps0.05"
    assert preprocessing_id("cifar10", stats="train") == "standardize-train-stats"
    assert preprocessing_id("cifar10", normalize=False) == "pixels01"
    assert preprocessing_id("cifar10", zca=True, normalize=True) == (
        "standardize-authors-constants+zca-eps0.1")
    assert preprocessing_id("cifar100", stats=CIFAR100_OWN_NORMALIZATION).startswith(
        "standardize-custom-mean0.5071")
    assert preprocessing_id("imagenette") == "standardize-authors-constants;resize=squash"
    assert preprocessing_id("imagenet2012:imagewoof", resize="crop") == (
        "standardize-authors-constants;resize=crop")
    assert preprocessing_id("digits") == "standardize-train-stats"
    # FreD / DDiF: MNIST and FashionMNIST are standardized even with --zca
    assert preprocessing_id("mnist", zca=True) == "standardize-authors-constants+zca-eps0.1"
    assert preprocessing_id("fashion_mnist", zca=True, normalize=False) == "zca01-eps0.1"
    assert AUTHORS_NORMALIZATION["cifar100"] == AUTHORS_NORMALIZATION["cifar10"]
    with pytest.raises(ValueError, match="resize"):
        preprocessing_id("imagenette", resize="stretch")
    with pytest.raises(ValueError, match="no authors' normalization constants"):
        load_dataset("digits", stats="authors")
    raw, _ = load_dataset("digits", normalize=False)
    assert raw.preprocessing == "pixels01"
    custom, _ = load_dataset("digits", stats=((0.5,), (0.25,)))
    np.testing.assert_allclose(custom.images, (raw.images - 0.5) / 0.25, atol=1e-6)
    assert custom.preprocessing == "standardize-custom-mean0.5-std0.25"


# ----------------------------------------------------------------------------- ZCA


def _correlated(n=400, shape=(3, 3, 2), seed=0):
    rng = np.random.default_rng(seed)
    d = int(np.prod(shape))
    a = rng.normal(size=(d, d)) * np.linspace(0.1, 2.0, d)
    x = rng.normal(size=(n, d)) @ a + rng.normal(size=d)
    return x.reshape((n,) + shape).astype(np.float32)


def test_zca_matches_kornia_formula():
    x = _correlated()
    zca = fit_zca(x, eps=0.1)
    flat = x.reshape(len(x), -1).astype(np.float64)
    cov = np.cov(flat, rowvar=False)  # unbiased, as kornia's default
    ref_w = scipy.linalg.fractional_matrix_power(cov + 0.1 * np.eye(len(cov)), -0.5).real
    ref_inv = scipy.linalg.fractional_matrix_power(cov + 0.1 * np.eye(len(cov)), 0.5).real
    np.testing.assert_allclose(zca.mean, flat.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(zca.W, ref_w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(zca.W_inv, ref_inv, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(zca.transform(x).reshape(len(x), -1),
                               (flat - flat.mean(0)) @ ref_w, rtol=1e-4, atol=1e-4)
    # biased variant divides by N
    zb = fit_zca(x, eps=0.1, unbiased=False)
    cov_b = cov * (len(x) - 1) / len(x)
    ref_b = scipy.linalg.fractional_matrix_power(cov_b + 0.1 * np.eye(len(cov)), -0.5).real
    np.testing.assert_allclose(zb.W, ref_b, rtol=1e-4, atol=1e-5)


def test_zca_whitens_and_round_trips():
    x = _correlated()
    zca = fit_zca(x, eps=1e-6)
    y = zca.transform(x)
    assert y.shape == x.shape
    flat = y.reshape(len(y), -1).astype(np.float64)
    np.testing.assert_allclose(flat.mean(0), 0.0, atol=1e-3)
    np.testing.assert_allclose(np.cov(flat, rowvar=False), np.eye(flat.shape[1]), atol=2e-3)
    np.testing.assert_allclose(zca.inverse(y), x, rtol=1e-4, atol=1e-3)
    # eps = 0.1 still round-trips exactly (W_inv is the inverse of W)
    z = fit_zca(x, eps=0.1)
    np.testing.assert_allclose(z.inverse(z.transform(x)), x, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(z.W_inv @ z.W, np.eye(z.num_features), atol=1e-4)


def test_zca_jax_backend_matches_numpy():
    from jaxdd.data.zca import apply_zca_batched

    x = _correlated(n=300)
    zn = fit_zca(x, eps=0.1, backend="numpy")
    zj = fit_zca(x, eps=0.1, backend="jax")
    np.testing.assert_allclose(zj.mean, zn.mean, atol=1e-5)
    np.testing.assert_allclose(zj.W, zn.W, rtol=5e-4, atol=1e-4)
    np.testing.assert_allclose(zj.W_inv, zn.W_inv, rtol=5e-4, atol=1e-3)
    # chunked application, both backends, with a ragged last chunk
    a = apply_zca_batched(zn, x, chunk=128, backend="numpy")
    b = apply_zca_batched(zn, x, chunk=128, backend="jax")
    np.testing.assert_allclose(a, zn.transform(x), atol=1e-5)
    np.testing.assert_allclose(b, a, atol=1e-4)


def test_zca_is_a_jax_pytree():
    x = _correlated(n=50, shape=(2, 2, 1))
    zca = fit_zca(x)
    leaves = jax.tree_util.tree_leaves(zca)
    assert len(leaves) == 3
    f = jax.jit(lambda z, v: z.inverse(z.transform(v)))
    np.testing.assert_allclose(np.asarray(f(zca, jnp.asarray(x))), x, rtol=1e-4, atol=1e-3)
    assert isinstance(jax.tree_util.tree_map(lambda a: a, zca), ZCA)


def test_load_digits_with_zca_on_pixels(digits):
    """The authors' --zca: NO mean/std, ZCA fitted on [0, 1] pixels of the train split and
    applied to both splits (mtt-distillation utils.py:58-59, 137-165)."""
    raw_tr, raw_te = load_dataset("digits", normalize=False)
    ztr, zte = load_dataset("digits", zca=True, zca_eps=0.1)
    assert ztr.preprocessing == "zca01-eps0.1"
    np.testing.assert_array_equal(ztr.mean, 0.0)
    np.testing.assert_array_equal(ztr.std, 1.0)
    assert ztr.zca is not None and ztr.zca is zte.zca and ztr.zca.W.shape == (64, 64)
    np.testing.assert_allclose(ztr.images, ztr.zca.transform(raw_tr.images), atol=1e-5)
    np.testing.assert_allclose(zte.images, ztr.zca.transform(raw_te.images), atol=1e-5)
    np.testing.assert_allclose(ztr.zca.mean, raw_tr.images.reshape(len(raw_tr), -1).mean(0),
                               atol=1e-6)
    np.testing.assert_allclose(zte.denormalize(zte.images), raw_te.images, atol=1e-5)
    np.testing.assert_allclose(ztr.normalize(raw_tr.images), ztr.images, atol=1e-5)
    # not the old pipeline (standardize, then ZCA), which stays available explicitly
    old, _ = load_dataset("digits", zca=True, normalize=True)
    assert old.preprocessing == "standardize-train-stats+zca-eps0.1"
    train, _ = digits
    np.testing.assert_allclose(old.images, old.zca.transform(train.images), atol=1e-4)
    assert np.abs(old.images - ztr.images).max() > 0.1


# ----------------------------------------------------------------------------- tfds


def test_tfds_mock_mnist_cifar10(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        tr, te = load_dataset("mnist", data_dir=tmp_path)
        assert tr.images.shape == (6, 28, 28, 1) and te.images.shape == (6, 28, 28, 1)
        assert tr.images.dtype == np.float32 and tr.labels.dtype == np.int32
        assert tr.num_classes == 10 and tr.name == "mnist"
        assert 0 <= tr.labels.min() and tr.labels.max() < 10
        # the authors' constants, not the (random) mock data's statistics
        np.testing.assert_allclose(tr.mean, [0.1307])
        np.testing.assert_allclose(tr.std, [0.3081])
        assert tr.preprocessing == "standardize-authors-constants"

        tr, te = load_dataset("cifar10", data_dir=tmp_path)
        assert tr.images.shape == (6, 32, 32, 3) and te.images.shape == (6, 32, 32, 3)
        assert tr.num_classes == 10 and tr.image_shape == (32, 32, 3)
        np.testing.assert_allclose(tr.std, [0.2023, 0.1994, 0.2010])
        raw, raw_te = load_dataset("cifar10", data_dir=tmp_path, normalize=False)
        np.testing.assert_allclose(te.denormalize(te.images), raw_te.images, atol=1e-6)

        tr, _ = load_dataset("cifar10", data_dir=tmp_path, resolution=16, normalize=False)
        assert tr.images.shape == (6, 16, 16, 3)
        assert tr.images.min() >= 0.0 and tr.images.max() <= 1.0

        tr, te = load_dataset("imagenette", data_dir=tmp_path, resolution=16)  # variable size
        assert tr.images.shape == (6, 16, 16, 3) and te.images.shape == (6, 16, 16, 3)
        assert tr.num_classes == 10
        assert tr.preprocessing == "standardize-authors-constants;resize=squash"
        np.testing.assert_allclose(tr.mean, [0.485, 0.456, 0.406])
        tc, _ = load_dataset("imagenette", data_dir=tmp_path, resolution=16, resize="crop")
        assert tc.preprocessing.endswith("resize=crop") and tc.images.shape == tr.images.shape


def _tiny_tfds_builder():
    """A tiny image dataset prepared for real (array_record, PNG records), no tensorflow."""
    from PIL import Image
    import tensorflow_datasets as tfds

    def png(a):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")
        return buf.getvalue()

    class JaxddTinyImages(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 3)),
                "label": tfds.features.ClassLabel(names=["a", "b", "c"]),
            }))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(0, 30), "test": self._generate_examples(1, 9)}

        def _generate_examples(self, seed, n):
            for i, img in enumerate(_tiny_images(seed, n)):
                yield i, {"image": png(img), "label": i % 3}

    return JaxddTinyImages


def _tiny_images(seed, n):
    return np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)


def test_tfds_real_array_record_read(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    builder = _tiny_tfds_builder()(data_dir=str(tmp_path), file_format="array_record")
    builder.download_and_prepare()
    tr, te = load_dataset("tfds:jaxdd_tiny_images", data_dir=tmp_path, normalize=False)
    assert tr.images.shape == (30, 8, 8, 3) and te.images.shape == (9, 8, 8, 3)
    assert tr.class_names == ("a", "b", "c")
    for ds, seed in ((tr, 0), (te, 1)):
        ref = _tiny_images(seed, len(ds))
        ref_rows = np.concatenate([ref.reshape(len(ref), -1),
                                   (np.arange(len(ref)) % 3)[:, None]], 1)
        got = np.round(ds.images * 255).astype(np.int64).reshape(len(ds), -1)
        got_rows = np.concatenate([got, ds.labels[:, None]], 1)
        np.testing.assert_array_equal(np.unique(got_rows, axis=0), np.unique(ref_rows, axis=0))
    # process 1 of 2 reads only its shard of the train records (labels scanned first)
    sh, te1 = load_dataset("tfds:jaxdd_tiny_images", data_dir=tmp_path, normalize=False,
                           shard=(1, 2))
    assert sh.shard is not None and len(sh) == 15 and sh.shard.total == 30
    np.testing.assert_array_equal(sh.images, tr.images[sh.shard.rows])
    np.testing.assert_array_equal(sh.labels, tr.labels[sh.shard.rows])
    assert (sh.shard.within % 2 == 1).all() and te1.shard is None and len(te1) == len(te)


def test_unprepared_tfds_fails_fast(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    for data_dir in (tmp_path, tmp_path / "missing"):
        start = time.perf_counter()
        with pytest.raises(DatasetNotPreparedError) as err:
            load_dataset("cifar10", data_dir=data_dir)
        elapsed = time.perf_counter() - start
        msg = str(err.value)
        assert "cifar10" in msg and "download=True" in msg and "data_dir" in msg
        assert elapsed < 10.0, elapsed  # plain tfds.load retries downloads for minutes


def test_unknown_dataset():
    with pytest.raises(ValueError) as err:
        load_dataset("not_a_dataset")
    for name in ("digits", "cifar10", "mnist", "imagenette", "imagenet2012:imagenette"):
        assert name in str(err.value)
        assert name in available_datasets()
    with pytest.raises(ValueError, match="unknown ImageNet subset"):
        load_dataset("imagenet2012:imagecats")


# ----------------------------------------------------------------------------- npz


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 5, 6, 3), dtype=np.uint8)
    y = np.arange(20) % 4
    xt = rng.integers(0, 256, (8, 5, 6, 3), dtype=np.uint8)
    yt = np.arange(8) % 4
    path = tmp_path / "toy.npz"
    np.savez(path, images=x, labels=y, test_images=xt, test_labels=yt,
             class_names=np.array(["w", "x", "y", "z"]))
    tr, te = load_dataset("npz", path=path)
    assert tr.images.shape == (20, 5, 6, 3) and te.images.shape == (8, 5, 6, 3)
    assert tr.class_names == ("w", "x", "y", "z") and tr.num_classes == 4
    np.testing.assert_array_equal(tr.labels, y)
    np.testing.assert_array_equal(te.labels, yt)
    np.testing.assert_allclose(tr.denormalize(tr.images), x / 255.0, atol=1e-5)
    np.testing.assert_allclose(te.denormalize(te.images), xt / 255.0, atol=1e-5)
    np.testing.assert_allclose(tr.images.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    # the name may be the path itself; float [0, 1] grayscale without a test split
    path2 = tmp_path / "gray.npz"
    g = rng.random((50, 4, 4)).astype(np.float32)
    np.savez(path2, images=g, labels=np.arange(50) % 5)
    tr2, te2 = load_dataset(str(path2), normalize=False)
    assert tr2.images.shape == (40, 4, 4, 1) and te2.images.shape == (10, 4, 4, 1)
    assert tr2.class_names == tuple("01234")
    both = np.concatenate([tr2.images, te2.images]).reshape(50, -1)
    np.testing.assert_allclose(np.unique(both, axis=0), np.unique(g.reshape(50, -1), axis=0))
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=g * 3, labels=np.arange(50) % 5)
    with pytest.raises(ValueError):
        load_dataset("npz", path=bad)


# ----------------------------------------------------------------------------- helpers


def test_class_indices_and_images_by_class(digits):
    train, _ = digits
    idx = class_indices(train.labels, train.num_classes)
    assert len(idx) == 10 and sum(len(i) for i in idx) == len(train)
    for c, ids in enumerate(idx):
        np.testing.assert_array_equal(ids, [i for i, l in enumerate(train.labels) if l == c])
    per_class = images_by_class(train)
    assert len(per_class) == 10
    for c in range(10):
        assert per_class[c].dtype == np.float32 and per_class[c].shape[1:] == (8, 8, 1)
        np.testing.assert_array_equal(per_class[c], train.images[train.labels == c])


@pytest.mark.parametrize("rng", ["jax", "numpy", "int"])
def test_random_real(digits, rng):
    train, _ = digits
    make = {"jax": lambda: jax.random.key(3), "numpy": lambda: np.random.default_rng(3),
            "int": lambda: 3}[rng]
    images, labels = random_real(make(), train, 4)
    assert images.shape == (40, 8, 8, 1) and images.dtype == np.float32
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 4))
    assert labels.dtype == np.int32
    flat = train.images.reshape(len(train), -1)
    for img, lab in zip(images.reshape(40, -1), labels):
        matches = np.flatnonzero((flat == img).all(1))
        assert len(matches) > 0 and (train.labels[matches] == lab).any()
    # n distinct images per class (no drawing with replacement)
    for c in range(10):
        assert len(np.unique(images[labels == c].reshape(4, -1), axis=0)) == 4
    again, _ = random_real(make(), train, 4)
    np.testing.assert_array_equal(again, images)
    if rng == "jax":
        other, _ = random_real(jax.random.key(4), train, 4)
        assert not np.array_equal(other, images)
    with pytest.raises(ValueError):
        random_real(make(), train, 10_000)


# ----------------------------------------------------------------------------- buffer metadata


def _old_meta(name="cifar10", zca=True):
    """Metadata of an expert written before jaxdd followed the authors' preprocessing."""
    return {"expert": 0,
            "dataset": {"name": name, "resolution": None, "normalize": True, "zca": zca,
                        "zca_eps": 0.1, "image_shape": [32, 32, 3], "num_train": 50000},
            "model": {"name": "ConvNetD3", "overrides": {}, "num_params": 320010},
            "epochs": 50, "record_epochs": 50, "lr_teacher": 0.01, "batch_size": 256,
            "dsa_strategy": "color_crop_cutout_flip_scale_rotate", "seed": 0,
            "format": "jaxdd.experts/1", "num_snapshots": 51}


def test_expected_metadata_names_the_preprocessing():
    from jaxdd import experts
    from jaxdd.config import buffer_config

    cfg = buffer_config("cifar10")
    assert experts.expected_metadata(cfg)["dataset"]["preprocessing"] == "zca01-eps0.1"
    cfg.dataset.zca = False
    assert experts.expected_metadata(cfg)["dataset"]["preprocessing"] == (
        "standardize-authors-constants")
    digits = buffer_config("digits")
    assert experts.expected_metadata(digits)["dataset"]["preprocessing"] == (
        "standardize-train-stats")


def test_old_buffer_metadata_is_refused():
    from jaxdd import experts
    from jaxdd.config import buffer_config

    cfg = buffer_config("cifar10")
    expected = experts.expected_metadata(cfg)
    hint = experts.build_command(cfg, buffer_dir="buffers/old")
    with pytest.raises(experts.ExpertMismatchError) as err:
        experts.check_metadata(_old_meta(), expected, where="expert 0 (buffers/old/expert_00000)",
                               buffer_dir="buffers/old", hint=hint)
    msg = str(err.value)
    assert "dataset.preprocessing: stored <absent>, expected 'zca01-eps0.1'" in msg
    assert "buffers/old" in msg and "rm -r buffers/old" in msg
    assert "python launch/buffer.py --config=configs/buffer.py:cifar10" in msg
    assert "train-split mean/std" in msg  # says what the old preprocessing was
    # a buffer with the current preprocessing passes; another id is refused, naming both
    new = _old_meta()
    new["dataset"]["preprocessing"] = "zca01-eps0.1"
    experts.check_metadata(new, expected)
    cfg.dataset.zca = False
    with pytest.raises(experts.ExpertMismatchError) as err:
        experts.check_metadata(new, experts.expected_metadata(cfg), buffer_dir="b")
    assert "stored 'zca01-eps0.1'" in str(err.value)
    assert "expected 'standardize-authors-constants'" in str(err.value)


def test_old_buffer_on_disk_is_refused_by_load_trajectories(tmp_path):
    from jaxdd import experts
    from jaxdd.config import buffer_config

    cfg = buffer_config("cifar10")
    traj = {"w": np.zeros((3, 2), np.float32)}
    experts.save_expert(experts.expert_dir(tmp_path, 0), traj, _old_meta())
    hint = experts.build_command(cfg, buffer_dir=str(tmp_path))
    with pytest.raises(experts.ExpertMismatchError) as err:
        experts.load_trajectories(tmp_path, expected=experts.expected_metadata(cfg),
                                  num_experts=1, build_hint=hint)
    msg = str(err.value)
    assert str(tmp_path) in msg and "dataset.preprocessing" in msg and hint in msg


# ----------------------------------------------------------------------------- process shards


def _two_process_gather():
    """A stand-in for the cross-process all-gather: two threads (= processes) each hand in
    their array and get both back, stacked in process order."""
    import threading

    slots, barrier = [None, None], threading.Barrier(2)
    who = threading.local()

    def gather(x):
        slots[who.p] = np.asarray(x)
        barrier.wait()
        out = np.stack(slots)
        barrier.wait()  # nobody overwrites a slot before both have read
        return out

    return gather, who


def _in_two_processes(fn):
    """fn(p) run by two threads that share `_two_process_gather`'s collective."""
    import threading

    gather, who = _two_process_gather()
    out, errors = [None, None], []

    def body(p):
        who.p = p
        try:
            out[p] = fn(p, gather)
        except Exception as e:  # noqa: BLE001 -- re-raised below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(p,)) for p in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return out


def test_process_shards_and_collective_reads(digits):
    """Two simulated processes: the strided per-class shards partition the split; rows of
    a class (chosen or all), the random-real draw's rows and the ZCA fit gathered from the
    shards equal the one-process values; shard=(0, 1) is the one-process load."""
    import dataclasses

    from jaxdd.data import shard as S
    from jaxdd.data.zca import fit_zca_sharded

    train, _ = digits
    nc = train.num_classes
    shards = []
    for p in range(2):
        info = S.make_shard(train.labels, nc, p, 2)
        assert (info.within % 2 == p).all() and info.total == len(train)
        np.testing.assert_array_equal(info.class_counts, np.bincount(train.labels))
        shards.append(dataclasses.replace(train, images=train.images[info.rows],
                                          labels=train.labels[info.rows], shard=info))
    rows = np.concatenate([s.shard.rows for s in shards])
    np.testing.assert_array_equal(np.sort(rows), np.arange(len(train)))
    members = class_indices(train.labels, nc)[3]
    pick = np.array([5, 0, 7, 7, len(members) - 1])

    def work(p, gather):
        ds = shards[p]
        return (S.gather_class_rows(ds, 3, pick, _gather=gather),
                S.gather_class(ds, 3, _gather=gather),
                fit_zca_sharded(ds.images, len(train),
                                allsum=lambda x: S.allsum(x, _gather=gather)))

    for rows_p, whole, zca in _in_two_processes(work):
        np.testing.assert_array_equal(rows_p, train.images[members[pick]])
        np.testing.assert_array_equal(whole, train.images[members])
        ref = fit_zca(train.images, backend="numpy")
        np.testing.assert_allclose(zca.W, ref.W, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(zca.mean, ref.mean, rtol=1e-6, atol=1e-6)
    view = images_by_class(shards[0])[3]
    assert isinstance(view, S.ClassView) and view.shape == (len(members),) + train.image_shape
    a, _ = load_dataset("digits", shard=(0, 1))
    assert a.shard is None and np.array_equal(a.images, train.images)
