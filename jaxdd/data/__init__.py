"""Data: sources (embedded digits, tfds, npz arrays) and preprocessing (normalize, ZCA).

    from jaxdd.data import load_dataset
    train, test = load_dataset('digits')                       # offline, 8x8x1
    train, test = load_dataset('cifar10', zca=True)            # tfds, MTT's ZCA (eps 0.1)
    train, test = load_dataset('npz', path='my_arrays.npz')

Images are float32 NHWC numpy arrays (normalized / ZCA'd), labels int32 (N,).
"""
from jaxdd.data.datasets import (
    Dataset,
    DatasetNotPreparedError,
    available_datasets,
    load_dataset,
)
from jaxdd.data.sampling import class_indices, images_by_class, random_real
from jaxdd.data.zca import ZCA, fit_zca

__all__ = [
    "Dataset",
    "DatasetNotPreparedError",
    "ZCA",
    "available_datasets",
    "class_indices",
    "fit_zca",
    "images_by_class",
    "load_dataset",
    "random_real",
]
