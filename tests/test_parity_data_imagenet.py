"""Parity: the authors' ImageNet-subset data (issue 13 item 8) -- class selection, label
order, Resize((R, R)) squash (MTT / FreD TM / DDiF TM) and Resize(R) + CenterCrop(R) (FreD
ImageNet-A..E), with the ImageNet constants. Fixture: tests/parity/make_data_imagenet.py
(torch's interpolate as torchvision's tensor Resize calls it, on tiny images of varying
sizes; R = 16).

jaxdd reads the same images through load_dataset('imagenet2012:imagenette') from a tiny
tfds dataset prepared for real (array_record, PNG records: lossless) that stands in for
tfds 'imagenet2012' (same features: variable-size RGB image, 1000-class label; splits train
and validation).

Tolerance: bilinear interpolation of float32 pixels; torch and jaxdd add the same four
products in a different order (torch: h0 * (w0 * a + w1 * b) + ...; jaxdd: rows then
columns) and jaxdd standardizes after resizing where the authors standardize before (exact
in real arithmetic: the weights sum to 1). Measured max abs difference 7.6e-7 on values up
to 2.5 (standardized); bound rtol 1e-5, atol 2e-6.
"""
import io

import numpy as np
import pytest

from jaxdd.data import datasets as dsmod
from jaxdd.data import load_dataset
from parity.common import load_fixture

RTOL, ATOL = 1e-5, 2e-6


@pytest.fixture(scope="module")
def fx():
    return load_fixture("data_imagenet")


@pytest.fixture(scope="module")
def tiny_imagenet(fx, tmp_path_factory):
    """A tfds dataset with imagenet2012's features holding the fixture's images."""
    import tensorflow_datasets as tfds
    from PIL import Image

    def png(a):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")
        return buf.getvalue()

    class JaxddTinyImagenet(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
                "label": tfds.features.ClassLabel(num_classes=1000),
                "file_name": tfds.features.Text(),
            }))

        def _split_generators(self, dl_manager):
            return {s: self._generate_examples(s) for s in ("train", "validation")}

        def _generate_examples(self, split):
            for i in range(int(fx[f"{split}_n"])):
                yield i, {"image": png(fx[f"{split}_{i}_u8"]),
                          "label": int(fx[f"{split}_{i}_label"]),
                          "file_name": str(fx[f"{split}_{i}_file_name"])}

    data_dir = tmp_path_factory.mktemp("tfds")
    JaxddTinyImagenet(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
    return data_dir


@pytest.fixture
def as_imagenet(monkeypatch):
    monkeypatch.setattr(dsmod, "_IMAGENET_TFDS", "jaxdd_tiny_imagenet")


def _nhwc(x):
    return np.transpose(x, (0, 2, 3, 1))


@pytest.mark.parametrize("resize", ["squash", "crop"])
def test_imagenet_subset_matches_authors(fx, tiny_imagenet, as_imagenet, resize):
    side = int(fx["side"])
    tr, te = load_dataset("imagenet2012:imagenette", data_dir=tiny_imagenet, resolution=side,
                          resize=resize)
    assert tr.preprocessing == f"standardize-authors-constants;resize={resize}"
    np.testing.assert_array_equal(tr.labels, fx["train_labels"])        # order + remap
    np.testing.assert_array_equal(te.labels, fx["validation_labels"])
    assert tr.images.shape == (len(fx["train_labels"]), side, side, 3)
    np.testing.assert_allclose(tr.images, _nhwc(fx[f"train_{resize}"]), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(te.images, _nhwc(fx[f"validation_{resize}"]), rtol=RTOL,
                               atol=ATOL)


def test_default_is_squash_and_aliases(fx, tiny_imagenet, as_imagenet):
    side = int(fx["side"])
    a, _ = load_dataset("imagenet2012:nette", data_dir=tiny_imagenet, resolution=side)  # DDiF key
    np.testing.assert_allclose(a.images, _nhwc(fx["train_squash"]), rtol=RTOL, atol=ATOL)
    raw, _ = load_dataset("imagenet2012:imagenette", data_dir=tiny_imagenet, resolution=side,
                          normalize=False)
    assert raw.preprocessing == "pixels01;resize=squash"
    np.testing.assert_allclose(raw.images, _nhwc(fx["train_squash_pixels"]), rtol=RTOL,
                               atol=1e-6)
    # the test split is ImageNet's validation images of the subset classes only
    assert len(_) == len(fx["validation_labels"])
