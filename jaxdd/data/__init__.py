"""Data: sources (embedded digits, tfds, ImageNet subsets, npz arrays) and the authors'
preprocessing (per-dataset mean/std constants, or ZCA on [0, 1] pixels; squash resize).

    from jaxdd.data import load_dataset
    train, test = load_dataset('digits')                       # offline, 8x8x1
    train, test = load_dataset('cifar10')                      # authors' mean/std constants
    train, test = load_dataset('cifar10', zca=True)            # [0, 1] pixels + ZCA (eps 0.1)
    train, test = load_dataset('imagenet2012:imagenette')      # the authors' ImageNette-128
    train, test = load_dataset('npz', path='my_arrays.npz')

Images are float32 NHWC numpy arrays (standardized or ZCA'd), labels int32 (N,);
Dataset.preprocessing names the pipeline (stored in expert-buffer metadata).
"""
from jaxdd.data.datasets import (
    AUTHORS_NORMALIZATION,
    CIFAR100_OWN_NORMALIZATION,
    IMAGENET_SUBSETS,
    Dataset,
    DatasetNotPreparedError,
    authors_normalization,
    available_datasets,
    load_dataset,
    preprocessing_id,
)
from jaxdd.data.sampling import class_indices, images_by_class, random_real
from jaxdd.data.zca import ZCA, fit_zca

__all__ = [
    "AUTHORS_NORMALIZATION",
    "CIFAR100_OWN_NORMALIZATION",
    "IMAGENET_SUBSETS",
    "Dataset",
    "DatasetNotPreparedError",
    "ZCA",
    "authors_normalization",
    "available_datasets",
    "class_indices",
    "fit_zca",
    "images_by_class",
    "load_dataset",
    "preprocessing_id",
    "random_real",
]
