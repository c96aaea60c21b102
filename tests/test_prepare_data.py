"""launch/prepare_data.py and jaxdd.data.prepare_voxels on tiny files laid out like the
public downloads (ModelNet-10 in modelnet40_normal_resampled, ShapeNet part, 3D MNIST h5),
and the prepared names' fail-fast message."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxdd.data import DatasetNotPreparedError, load_dataset
from jaxdd.data.prepare_voxels import prepare_3dmnist, voxelize

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def _launcher():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "jaxdd_launch_prepare_data", os.path.join(ROOT, "launch", "prepare_data.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


prepare_data = _launcher()


def _cloud(rng, n=40, normals=3, extra=0):
    return np.concatenate([rng.random((n, 3)) * 2 - 1, rng.random((n, normals + extra))], 1)


def _modelnet(root, rng):
    names = ["bathtub", "night_stand"]  # a class name with '_' (the id's last part is cut)
    (root / "modelnet10_shape_names.txt").write_text("\n".join(names) + "\n")
    ids = {"train": ["bathtub_0001", "bathtub_0002", "night_stand_0001"],
           "test": ["bathtub_0107", "night_stand_0201"]}
    clouds = {}
    for split, lst in ids.items():
        (root / f"modelnet10_{split}.txt").write_text("\n".join(lst) + "\n")
        for sid in lst:
            cls = "_".join(sid.split("_")[:-1])
            (root / cls).mkdir(exist_ok=True)
            clouds[sid] = _cloud(rng)
            np.savetxt(root / cls / f"{sid}.txt", clouds[sid], delimiter=",", fmt="%.6f")
    # a ModelNet-40 class present in the folder but not in the ModelNet-10 lists: ignored
    (root / "airplane").mkdir()
    np.savetxt(root / "airplane" / "airplane_0001.txt", _cloud(rng), delimiter=",")
    return ids, clouds


def test_voxelize_like_the_authors():
    pts = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 4.0], [0.5, 1.0, 1.0]])
    g = voxelize(pts, 32)
    assert g.shape == (32, 32, 32) and g.dtype == bool and g.sum() == 3
    # per-axis min-max to [0, 1], then int(u * 31): (0,0,0), (31,31,31), (15,15,7)
    assert g[0, 0, 0] and g[31, 31, 31] and g[15, 15, 7]
    flat = voxelize(np.array([[0.0, 1.0, 5.0], [1.0, 1.0, 6.0]]), 4)  # y is flat: cell 0
    assert flat[0, 0, 0] and flat[3, 0, 3] and flat.sum() == 2


def test_modelnet10_command(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "modelnet40_normal_resampled"
    src.mkdir()
    ids, clouds = _modelnet(src, rng)
    out = tmp_path / "data" / "modelnet10.npz"
    assert prepare_data.main(["modelnet10", "--src", str(src), "--out", str(out)]) == 0
    with np.load(out) as f:
        assert str(f["modality"]) == "voxel"
        assert f["images"].shape == (3, 32, 32, 32, 1) and f["images"].dtype == bool
        np.testing.assert_array_equal(f["labels"], [0, 0, 1])
        np.testing.assert_array_equal(f["test_labels"], [0, 1])
        assert list(f["class_names"]) == ["bathtub", "night_stand"]
        np.testing.assert_array_equal(f["images"][2, ..., 0],
                                      voxelize(clouds["night_stand_0001"], 32))
    tr, te = load_dataset("modelnet10", data_dir=tmp_path / "data")
    assert tr.modality == "voxel" and tr.images.shape == (3, 32, 32, 32, 1) and len(te) == 2
    assert tr.preprocessing == "pixels01;modality=voxel"  # raw occupancies, as the authors
    assert set(np.unique(tr.images)) <= {0.0, 1.0}
    assert tr.class_names == ("bathtub", "night_stand")


def test_shapenet_command(tmp_path):
    rng = np.random.default_rng(1)
    src = tmp_path / "shapenetcore_partanno_segmentation_benchmark_v0_normal"
    (src / "train_test_split").mkdir(parents=True)
    cats = [("Airplane", "02691156"), ("Bag", "02773838")]
    (src / "synsetoffset2category.txt").write_text(
        "".join(f"{n}\t{o}\n" for n, o in cats))
    tokens = {"02691156": ["a1", "a2", "a3"], "02773838": ["b1", "b2"]}
    split = {"train": ["a3", "a1", "b2"], "val": ["a2"], "test": ["b1"]}
    for o, toks in tokens.items():
        (src / o).mkdir()
        for t in toks:
            np.savetxt(src / o / f"{t}.txt", _cloud(rng, extra=1), fmt="%.6f")
    owner = {t: o for o, toks in tokens.items() for t in toks}
    for s, toks in split.items():
        with open(src / "train_test_split" / f"shuffled_{s}_file_list.json", "w") as f:
            json.dump([f"shape_data/{owner[t]}/{t}" for t in toks], f)
    out = tmp_path / "shapenet.npz"
    assert prepare_data.main(["shapenet", "--src", str(src), "--out", str(out)]) == 0
    tr, te = load_dataset("shapenet", data_dir=tmp_path)
    # train = 'train' only (the val token a2 is left out); files in sorted order per class
    np.testing.assert_array_equal(tr.labels, [0, 0, 1])
    np.testing.assert_array_equal(te.labels, [1])
    assert tr.class_names == ("Airplane", "Bag") and tr.images.shape == (3, 32, 32, 32, 1)
    a1 = np.loadtxt(src / "02691156" / "a1.txt")
    np.testing.assert_array_equal(tr.images[0, ..., 0], voxelize(a1, 32).astype(np.float32))


def test_3dmnist_command(tmp_path):
    h5py = pytest.importorskip("h5py")  # the 'test' extra installs it (setup.py)
    rng = np.random.default_rng(2)
    (tmp_path / "3D-MNIST").mkdir()
    xs = {s: rng.random((n, 4096)).astype(np.float32) for s, n in (("train", 6), ("test", 3))}
    with h5py.File(tmp_path / "3D-MNIST" / "full_dataset_vectors.h5", "w") as hf:
        for s, x in xs.items():
            hf[f"X_{s}"] = x
            hf[f"y_{s}"] = np.arange(len(x)) % 3
    out = tmp_path / "3dmnist.npz"
    assert prepare_data.main(["3dmnist", "--src", str(tmp_path), "--out", str(out)]) == 0
    tr, te = load_dataset("3dmnist", data_dir=tmp_path)
    assert tr.images.shape == (6, 16, 16, 16, 1) and te.images.shape == (3, 16, 16, 16, 1)
    np.testing.assert_array_equal(tr.images, xs["train"].reshape(6, 16, 16, 16, 1))
    np.testing.assert_array_equal(te.labels, [0, 1, 2])
    assert tr.class_names == tuple(str(i) for i in range(10)) and tr.modality == "voxel"
    # the file itself as --src; a bad file is refused with its name
    assert prepare_3dmnist(tmp_path / "3D-MNIST" / "full_dataset_vectors.h5")["images"].shape \
        == (6, 16, 16, 16, 1)
    with h5py.File(tmp_path / "bad.h5", "w") as hf:
        hf["X_train"] = np.zeros((2, 10))
        hf["y_train"] = np.zeros(2)
    with pytest.raises(ValueError, match=r"X_train must be \(N, 4096\)"):
        prepare_3dmnist(tmp_path / "bad.h5")


def test_missing_h5py_message(tmp_path, monkeypatch):
    (tmp_path / "full_dataset_vectors.h5").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py -> ImportError
    with pytest.raises(ImportError, match="pip install h5py"):
        prepare_3dmnist(tmp_path)


def test_unprepared_voxel_sets_fail_fast_with_the_command(tmp_path):
    for name, src_hint in (("modelnet10", "modelnet40_normal_resampled"),
                           ("shapenet", "shapenetcore_partanno"), ("3dmnist", "3D-MNIST")):
        t0 = time.perf_counter()
        with pytest.raises(DatasetNotPreparedError) as err:
            load_dataset(name, data_dir=tmp_path)
        assert time.perf_counter() - t0 < 1.0
        msg = str(err.value)
        assert f"python launch/prepare_data.py {name} --src" in msg and src_hint in msg
        assert str(tmp_path / f"{name}.npz") in msg


def test_cli_errors_and_help(tmp_path, capsys):
    assert prepare_data.main(["modelnet10", "--src", str(tmp_path)]) == 1
    assert "modelnet10_shape_names.txt" in capsys.readouterr().err
    res = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "prepare_data.py"),
                          "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    for word in ("modelnet10", "shapenet", "3dmnist", "--src"):
        assert word in res.stdout
