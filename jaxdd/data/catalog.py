"""The dataset names `load_dataset` knows: the tfds datasets (`_TFDS`), the authors'
ImageNet class subsets (`IMAGENET_SUBSETS` and their aliases) and which sources have
variable-size images. Part of :mod:`jaxdd.data.datasets`.
"""
from __future__ import annotations

# name -> (tfds name, train split, test split, default side for variable-size images)
_TFDS = {
    "mnist": ("mnist", "train", "test", None),
    "fashion_mnist": ("fashion_mnist", "train", "test", None),
    "cifar10": ("cifar10", "train", "test", None),
    "cifar100": ("cifar100", "train", "test", None),
    "svhn_cropped": ("svhn_cropped", "train", "test", None),
    "svhn": ("svhn_cropped", "train", "test", None),
    # fast.ai's Imagenette (tfds 'imagenette', 9469 train / 3925 validation images of the
    # 10 imagenette classes; the 160px variant is the smallest download whose shorter side
    # is >= 128). NOT the authors' data: they take ALL ImageNet-1k train images of the 10
    # classes (~13k) and the 500 ImageNet validation images of those classes; for that use
    # 'imagenet2012:imagenette' (below). Resized to 128 x 128 (default 'squash', as the
    # authors' Resize((128, 128))).
    "imagenette": ("imagenette/160px-v2", "train", "validation", 128),
}


# The authors' ImageNet class subsets: ImageNet-1k class indices (torchvision ImageNet /
# tfds imagenet2012 label order: synsets sorted by WordNet id). Label c of the subset is the
# c-th index of its list (the authors' class_map). Sources: mtt-distillation utils.py:17-42
# (imagenette, imagewoof, imagemeow, imagesquawk, imagefruit, imageyellow); the same lists in
# FreD TM/utils.py:43-69 and DDiF TM/utils.py:40-109 (DDiF's keys: nette, woof, fruits,
# yellow, cats, birds, a..e); ImageNet-A..E (GLaD's subsets) from FreD
# ImageNet-abcde/utils.py:76-101 (alpha..epsilon).
IMAGENET_SUBSETS = {
    "imagenette": (0, 217, 482, 491, 497, 566, 569, 571, 574, 701),
    "imagewoof": (193, 182, 258, 162, 155, 167, 159, 273, 207, 229),
    "imagemeow": (281, 282, 283, 284, 285, 291, 292, 290, 289, 287),
    "imagesquawk": (84, 130, 88, 144, 145, 22, 96, 9, 100, 89),
    "imagefruit": (953, 954, 949, 950, 951, 957, 952, 945, 943, 948),
    "imageyellow": (309, 986, 954, 951, 987, 779, 599, 291, 72, 11),
    "imagenet-a": (255, 376, 984, 364, 500, 986, 333, 576, 148, 135),
    "imagenet-b": (129, 916, 90, 275, 995, 874, 102, 259, 685, 139),
    "imagenet-c": (565, 94, 554, 535, 92, 392, 291, 136, 324, 11),
    "imagenet-d": (9, 258, 13, 262, 19, 339, 321, 24, 93, 322),
    "imagenet-e": (816, 96, 100, 145, 739, 713, 783, 76, 688, 326),
}
# DDiF's subset keys (DDiF TM/utils.py:92-108) and FreD's short names -> ours.
_SUBSET_ALIASES = {"nette": "imagenette", "woof": "imagewoof", "fruits": "imagefruit",
                   "yellow": "imageyellow", "cats": "imagemeow", "birds": "imagesquawk",
                   **{k: f"imagenet-{k}" for k in "abcde"}}
_IMAGENET_PREFIX = "imagenet2012:"
_IMAGENET_SIDE = 128  # the authors' im_size for ImageNet subsets


# Data modalities: arrays are float32 (N, *grid, C), channels last.
#   image (N, H, W, C); audio (N, F, T, 1) a log-magnitude spectrogram (frequency, time);
#   video (N, T, H, W, C); voxel (N, D, H, W, 1).
MODALITIES = ("image", "audio", "video", "voxel")
MODALITY_RANK = {"image": 4, "audio": 4, "video": 5, "voxel": 5}

# Embedded (offline) sets: name -> modality (`jaxdd.data.embedded` builds the non-image ones).
_EMBEDDED = {"digits": "image", "digits_video": "video", "digits_voxel": "voxel",
             "synth_speech": "audio"}
# Non-image tfds sources (`jaxdd.data.media`): name -> modality.
_TFDS_MEDIA = {"miniucf": "video", "mini_speech_commands": "audio", "spoken_digit": "audio"}
# Sets without a tfds builder: prepared once into an npz by launch/prepare_data.py
# (`jaxdd.data.prepare_voxels`), then read from data_dir: name -> modality.
_PREPARED = {"modelnet10": "voxel", "shapenet": "voxel", "3dmnist": "voxel"}


def modality_of(name) -> str:
    """The modality of a dataset name ('image' for image sources, npz files and unknown
    names: an npz file's modality is known only once it is read)."""
    low = str(name).lower()
    base = low.split("/")[0]
    for table in (_EMBEDDED, _TFDS_MEDIA, _PREPARED):
        if base in table:
            return table[base]
    return "image"


def available_datasets() -> tuple[str, ...]:
    """Names accepted by `load_dataset` (plus any path ending in '.npz' and 'tfds:<name>')."""
    return (tuple(_EMBEDDED) + tuple(_TFDS)
            + tuple(_IMAGENET_PREFIX + k for k in IMAGENET_SUBSETS)
            + tuple(_TFDS_MEDIA) + tuple(_PREPARED) + ("npz",))


def _is_variable_size(name) -> bool:
    low = str(name).lower()
    return low.startswith(_IMAGENET_PREFIX) or (
        low.split("/")[0] in _TFDS and _TFDS[low.split("/")[0]][3] is not None)


def _subset_ids(subset: str) -> tuple:
    key = _SUBSET_ALIASES.get(subset.lower(), subset.lower())
    if key not in IMAGENET_SUBSETS:
        raise ValueError(f"unknown ImageNet subset {subset!r}; known: "
                         f"{', '.join(IMAGENET_SUBSETS)} (aliases: {', '.join(_SUBSET_ALIASES)})")
    return IMAGENET_SUBSETS[key]
