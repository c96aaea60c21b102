"""Data: sources (embedded digits, tfds, ImageNet subsets, npz arrays) and the authors'
preprocessing (per-dataset mean/std constants, or ZCA on [0, 1] pixels; squash resize).

    from jaxdd.data import load_dataset
    train, test = load_dataset('digits')                       # offline, 8x8x1
    train, test = load_dataset('cifar10')                      # authors' mean/std constants
    train, test = load_dataset('cifar10', zca=True)            # [0, 1] pixels + ZCA (eps 0.1)
    train, test = load_dataset('imagenet2012:imagenette')      # the authors' ImageNette-128
    train, test = load_dataset('npz', path='my_arrays.npz')
    train, test = load_dataset('digits_video')                 # offline video (N, 8, 16, 16, 3)
    train, test = load_dataset('digits_voxel')                 # offline voxels (N, 16, 16, 16, 1)
    train, test = load_dataset('synth_speech')                 # offline audio (N, 32, 32, 1)

Arrays are float32 numpy (N, *grid, C), channels last (standardized or ZCA'd), labels int32
(N,); Dataset.modality says which grid: 'image' (N, H, W, C), 'audio' (N, F, T, 1)
spectrograms, 'video' (N, T, H, W, C), 'voxel' (N, D, H, W, 1). Dataset.preprocessing names
the pipeline (stored in expert-buffer metadata).
"""
from jaxdd.data.datasets import (
    AUTHORS_NORMALIZATION,
    CIFAR100_OWN_NORMALIZATION,
    IMAGENET_SUBSETS,
    Dataset,
    DatasetNotPreparedError,
    authors_normalization,
    available_datasets,
    embedded_sha256,
    load_dataset,
    preprocessing_id,
)
from jaxdd.data.catalog import MODALITIES, modality_of
from jaxdd.data.sampling import class_indices, images_by_class, random_real
from jaxdd.data.zca import ZCA, fit_zca

__all__ = [
    "AUTHORS_NORMALIZATION",
    "CIFAR100_OWN_NORMALIZATION",
    "IMAGENET_SUBSETS",
    "MODALITIES",
    "Dataset",
    "DatasetNotPreparedError",
    "ZCA",
    "authors_normalization",
    "available_datasets",
    "class_indices",
    "embedded_sha256",
    "fit_zca",
    "images_by_class",
    "load_dataset",
    "modality_of",
    "preprocessing_id",
    "random_real",
]
