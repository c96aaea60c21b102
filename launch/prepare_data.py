"""Turn public voxel-dataset files into the npz that jaxdd.data.load_dataset reads.

    python launch/prepare_data.py modelnet10 --src <dir>/modelnet40_normal_resampled \
        --out ~/tensorflow_datasets/modelnet10.npz
    python launch/prepare_data.py shapenet \
        --src <dir>/shapenetcore_partanno_segmentation_benchmark_v0_normal \
        --out ~/tensorflow_datasets/shapenet.npz
    python launch/prepare_data.py 3dmnist --src <dir>/full_dataset_vectors.h5 \
        --out ~/tensorflow_datasets/3dmnist.npz      # needs h5py

then load_dataset('modelnet10', data_dir='~/tensorflow_datasets') (or set TFDS_DATA_DIR).
The file formats, the voxelization (32^3 for ModelNet-10 / ShapeNet, 16^3 for 3D MNIST) and
their sources are documented in jaxdd/data/prepare_voxels.py.
"""
import argparse
import sys
import time

import numpy as np

from jaxdd.data.prepare_voxels import PREPARERS, default_npz_path, write_npz

_HELP = {
    "modelnet10": "ModelNet-10 from the modelnet40_normal_resampled folder (its modelnet10_* "
                  "lists and <class>/<id>.txt point clouds), voxelized at 32^3",
    "shapenet": "ShapeNet part from shapenetcore_partanno_segmentation_benchmark_v0_normal "
                "(synsetoffset2category.txt, train_test_split/*.json, <offset>/<token>.txt), "
                "voxelized at 32^3, 16 classes",
    "3dmnist": "3D MNIST from full_dataset_vectors.h5 (a file, or a folder holding it or "
               "3D-MNIST/full_dataset_vectors.h5), 16^3; needs h5py",
}


def parse(argv=None):
    p = argparse.ArgumentParser(
        description="Prepare a voxel dataset (no tfds builder exists for these) as the npz "
                    "that jaxdd.data.load_dataset reads from <data_dir>/<name>.npz.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest="name", required=True, metavar="DATASET")
    for name, text in _HELP.items():
        s = sub.add_parser(name, help=text, description=text)
        s.add_argument("--src", required=True, help="the downloaded folder (or file)")
        s.add_argument("--out", default=None,
                       help=f"npz to write (default {default_npz_path(name)}: where "
                            f"load_dataset('{name}') looks without data_dir)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    out = args.out if args.out is not None else default_npz_path(args.name)
    t0 = time.time()
    try:
        arrays = PREPARERS[args.name](args.src)
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"prepare_data.py {args.name}: {e}", file=sys.stderr)
        return 1
    path = write_npz(arrays, out)
    counts = np.bincount(arrays["labels"], minlength=len(arrays["class_names"]))
    print(f"{args.name}: train {arrays['images'].shape}, test {arrays['test_images'].shape}, "
          f"{len(arrays['class_names'])} classes (train per class {counts.tolist()}) -> {path} "
          f"({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
