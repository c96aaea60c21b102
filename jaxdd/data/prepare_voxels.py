"""Voxel sets without a tfds builder: read the public files the authors' loaders read,
voxelize them as the authors do, and write the npz that `load_dataset` takes; then
`load_dataset('modelnet10' | 'shapenet' | '3dmnist', data_dir=...)` reads
<data_dir>/<name>.npz. The command is launch/prepare_data.py:

    python launch/prepare_data.py modelnet10 --src <dir>/modelnet40_normal_resampled --out x.npz
    python launch/prepare_data.py shapenet \
        --src <dir>/shapenetcore_partanno_segmentation_benchmark_v0_normal --out x.npz
    python launch/prepare_data.py 3dmnist --src <dir or full_dataset_vectors.h5> --out x.npz

Formats (as read by aailab-kaist/DDiF @ b628e7b, 3D_Voxel/datasets.py and
sdh0818/FreD @ 9f35a7a, 3D-MNIST/utils.py):

* ModelNet-10 (DDiF 3D_Voxel/datasets.py:69-140, num_category 10): in the
  modelnet40_normal_resampled folder, modelnet10_shape_names.txt (class order),
  modelnet10_train.txt / modelnet10_test.txt (shape ids such as 'chair_0001'; the class is
  the id without its last '_' part), and <class>/<id>.txt point clouds, comma-separated
  rows x,y,z,nx,ny,nz. All points are used (npoints -1).
* ShapeNet part (DDiF 3D_Voxel/datasets.py:151-216): synsetoffset2category.txt (rows
  '<Category> <synset offset>', the class order), train_test_split/shuffled_train_file_list
  .json and shuffled_test_file_list.json (entries 'shape_data/<offset>/<token>'), and
  <offset>/<token>.txt point clouds, whitespace-separated rows x y z nx ny nz part. The
  authors' train split is 'train' alone (not train + val); 16 classes.
* Both voxelized at 32^3 as DDiF's voxelize (3D_Voxel/datasets.py:142-148): the x, y, z
  coordinates min-max normalized per axis to [0, 1], cell = int(coord * 31), occupancy 1;
  grid axes (D, H, W) = (x, y, z). A flat axis (max == min), where the authors' division
  gives NaN, is put at cell 0 here.
* 3D MNIST (FreD 3D-MNIST/utils.py:42-91): full_dataset_vectors.h5 with X_train, X_test
  (N, 4096) floats, y_train, y_test; each row reshaped to 16 x 16 x 16 (no threshold: the
  authors call prepare_points with threshold=False). Needs h5py (pip install h5py, or the
  'prepare' extra of jaxdd).

The npz: images / test_images (N, 32, 32, 32, 1) bool occupancies (ModelNet, ShapeNet) or
float32 values in [0, 1] (3D MNIST), labels / test_labels int32, class_names,
modality 'voxel'.
"""
from __future__ import annotations

import json
import os
import pathlib

import numpy as np

__all__ = ["voxelize", "prepare_modelnet10", "prepare_shapenet", "prepare_3dmnist",
           "write_npz", "default_npz_path", "load_prepared", "PREPARERS", "prepare_command"]

_SRC_HINT = {
    "modelnet10": "<dir>/modelnet40_normal_resampled",
    "shapenet": "<dir>/shapenetcore_partanno_segmentation_benchmark_v0_normal",
    "3dmnist": "<dir with 3D-MNIST/full_dataset_vectors.h5, or the .h5 file>",
}


def voxelize(points: np.ndarray, side: int = 32) -> np.ndarray:
    """Point cloud (P, >= 3) -> bool occupancy (side, side, side), DDiF's voxelize."""
    xyz = np.asarray(points, np.float64)[:, :3]
    lo, hi = xyz.min(0), xyz.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    unit = np.where(hi > lo, (xyz - lo) / span, 0.0)
    cells = (unit * (side - 1)).astype(np.int64)
    grid = np.zeros((side, side, side), bool)
    grid[cells[:, 0], cells[:, 1], cells[:, 2]] = True
    return grid


def _need(path: pathlib.Path, what: str) -> pathlib.Path:
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path} (is --src the right folder?)")
    return path


def _lines(path: pathlib.Path, what: str) -> list:
    return [ln.strip() for ln in _need(path, what).read_text().splitlines() if ln.strip()]


def _stack(clouds, labels, side):
    x = np.zeros((len(clouds), side, side, side, 1), bool)
    for i, f in enumerate(clouds):
        x[i, ..., 0] = voxelize(f(), side)
    return x, np.asarray(labels, np.int32)


def prepare_modelnet10(src, side: int = 32) -> dict:
    """ModelNet-10 from modelnet40_normal_resampled -> npz arrays (see module doc)."""
    src = pathlib.Path(src)
    names = _lines(src / "modelnet10_shape_names.txt", "ModelNet-10 class list")
    index = {n: i for i, n in enumerate(names)}
    out = {}
    for split, key in (("train", "images"), ("test", "test_images")):
        ids = _lines(src / f"modelnet10_{split}.txt", f"ModelNet-10 {split} list")
        clouds, labels = [], []
        for sid in ids:
            cls = "_".join(sid.split("_")[:-1])
            if cls not in index:
                raise ValueError(f"{src}: shape {sid!r} of modelnet10_{split}.txt has class "
                                 f"{cls!r}, not in modelnet10_shape_names.txt")
            path = _need(src / cls / f"{sid}.txt", "point cloud")
            clouds.append(lambda p=path: np.loadtxt(p, delimiter=",", ndmin=2))
            labels.append(index[cls])
        out[key], out[key.replace("images", "labels")] = _stack(clouds, labels, side)
    out["class_names"] = np.asarray(names)
    return out


def prepare_shapenet(src, side: int = 32) -> dict:
    """ShapeNet part (..._v0_normal) -> npz arrays (see module doc)."""
    src = pathlib.Path(src)
    rows = [ln.split() for ln in _lines(src / "synsetoffset2category.txt",
                                        "ShapeNet category list")]
    cats = [(r[0], r[1]) for r in rows]  # (name, synset offset), the authors' class order
    out = {}
    for split, key in (("train", "images"), ("test", "test_images")):
        lst = src / "train_test_split" / f"shuffled_{split}_file_list.json"
        with open(_need(lst, f"ShapeNet {split} list")) as f:
            tokens = {str(d).split("/")[2] for d in json.load(f)}
        clouds, labels = [], []
        for c, (_, offset) in enumerate(cats):
            folder = _need(src / offset, f"ShapeNet category folder ({offset})")
            for fn in sorted(os.listdir(folder)):
                if fn[:-4] in tokens:
                    clouds.append(lambda p=folder / fn: np.loadtxt(p, ndmin=2))
                    labels.append(c)
        out[key], out[key.replace("images", "labels")] = _stack(clouds, labels, side)
    out["class_names"] = np.asarray([n for n, _ in cats])
    return out


def prepare_3dmnist(src) -> dict:
    """3D MNIST full_dataset_vectors.h5 (a file, or a folder holding it directly or in
    3D-MNIST/) -> npz arrays (see module doc)."""
    src = pathlib.Path(src)
    if src.is_dir():
        cands = [src / "full_dataset_vectors.h5", src / "3D-MNIST" / "full_dataset_vectors.h5"]
        found = [c for c in cands if c.exists()]
        if not found:
            raise FileNotFoundError(f"no full_dataset_vectors.h5 in {src} or {src}/3D-MNIST")
        src = found[0]
    _need(src, "3D MNIST file")
    try:
        import h5py
    except ImportError as e:
        raise ImportError("preparing 3D MNIST reads an HDF5 file and needs h5py: "
                          "pip install h5py  (or pip install -e '.[prepare]')") from e
    out = {}
    with h5py.File(src, "r") as hf:
        for part, key in (("train", "images"), ("test", "test_images")):
            for k in (f"X_{part}", f"y_{part}"):
                if k not in hf:
                    raise ValueError(f"{src}: no dataset {k!r} (has {sorted(hf.keys())})")
            x = np.asarray(hf[f"X_{part}"][:], np.float32)
            if x.ndim != 2 or x.shape[1] != 16 ** 3:
                raise ValueError(f"{src}: X_{part} must be (N, 4096), got {x.shape}")
            if x.size and (x.min() < 0 or x.max() > 1):
                raise ValueError(f"{src}: X_{part} values lie in [{x.min():g}, {x.max():g}], "
                                 f"expected [0, 1]")
            out[key] = x.reshape(-1, 16, 16, 16, 1)
            out[key.replace("images", "labels")] = np.asarray(hf[f"y_{part}"][:], np.int32)
    out["class_names"] = np.asarray([str(c) for c in range(10)])
    return out


PREPARERS = {"modelnet10": prepare_modelnet10, "shapenet": prepare_shapenet,
             "3dmnist": prepare_3dmnist}


def write_npz(arrays: dict, out) -> pathlib.Path:
    """Write the arrays (+ modality 'voxel') compressed to `out`; returns the path."""
    out = pathlib.Path(os.path.expanduser(str(out)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, modality=np.asarray("voxel"), **arrays)
    os.replace(tmp, out)
    return out


def _data_dir(data_dir) -> pathlib.Path:
    where = data_dir if data_dir is not None else (
        os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")
    return pathlib.Path(os.path.expanduser(str(where)))


def default_npz_path(name: str, data_dir=None) -> pathlib.Path:
    """Where `load_dataset(name, data_dir=...)` looks: <data_dir>/<name>.npz (data_dir
    default: $TFDS_DATA_DIR or ~/tensorflow_datasets, as for the tfds sources)."""
    return _data_dir(data_dir) / f"{name}.npz"


def prepare_command(name: str, data_dir=None) -> str:
    return (f"python launch/prepare_data.py {name} --src {_SRC_HINT[name]} "
            f"--out {default_npz_path(name, data_dir)}")


def load_prepared(name: str, data_dir=None):
    """(x, y, x_test, y_test, class_names) of a prepared voxel set; fails at once, with the
    command to run, when its npz is absent."""
    from jaxdd.data.arrays import _load_npz
    from jaxdd.data.tfds_reader import DatasetNotPreparedError

    path = default_npz_path(name, data_dir)
    if not path.exists():
        raise DatasetNotPreparedError(
            f"dataset {name!r} is not prepared: {path} does not exist. It has no tfds builder; "
            f"make it once from the public files (the formats the authors' loaders read):\n"
            f"    {prepare_command(name, data_dir)}\n"
            f"(or pass data_dir= the folder that holds {name}.npz).")
    *src, modality = _load_npz(path)
    if modality != "voxel":
        raise ValueError(f"{path}: holds {modality} data, expected voxels; remake it with "
                         f"{prepare_command(name, data_dir)}")
    return tuple(src)
