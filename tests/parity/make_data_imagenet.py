"""Parity fixture for the authors' ImageNet-subset data (issue 13 item 8): class selection,
label order and the Resize transform, on tiny deterministic images of varying sizes.

    python tests/parity/make_data_imagenet.py --ref=<checkout of GeorgeCazenavette/mtt-distillation>

What the authors do for --dataset=ImageNet --subset=imagenette (mtt-distillation
utils.py:84-115; identical in FreD TM/utils.py:144-172 and DDiF TM/utils.py:182-211 with
im_size (args.res, args.res)):
  * transform (utils.py:98-101, no ZCA): ToTensor() -> Normalize(ImageNet mean/std) ->
    Resize(im_size) with im_size = (128, 128): a tuple, so both sides go to 128 (a squash,
    aspect ratio not kept) -> CenterCrop(im_size), a no-op after the squash;
  * dst_train = ImageNet train restricted to targets in the subset's list, in dataset order
    (utils.py:105); dst_test = ImageNet val restricted the same way (utils.py:107-108);
    labels remapped to the position in the list (utils.py:109-111). torchvision's ImageNet
    is an ImageFolder: samples sorted by class folder (WordNet id = class index order), then
    file name; each record here gets a file name and the generator sorts the same way.
FreD ImageNet-abcde/utils.py:180-183 (ImageNet-A..E) instead uses Resize(res) with an int:
shorter side to res, longer side int(res * long / short), then CenterCrop(res) (offsets
round((n - res) / 2)): stored as the 'crop' outputs.
torchvision is not installed here, so its Resize on a tensor is re-stated with the call it
makes in the authors' versions (torchvision 0.12 transforms/functional_tensor.py resize:
torch.nn.functional.interpolate(img, size, mode='bilinear', align_corners=False,
antialias=False); 0.16 (DDiF) defaults antialias to False for tensors too), and its
_compute_resized_output_size / center_crop arithmetic for the 'crop' case. R = 16 here
instead of 128 (tiny fixture); the class ids are the real imagenette list.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity.common import (add_commit_arg, add_reference_path, save_fixture,  # noqa: E402
                           stub_torchvision)

R = 16
TRAIN = [((37, 50), 0), ((20, 20), 5), ((50, 37), 217), ((9, 7), 482), ((30, 41), 999),
         ((24, 33), 701)]
VAL = [((33, 21), 217), ((18, 26), 3), ((40, 40), 0)]


def _resize_crop(x, side):
    """torchvision 0.12 Resize(side) + CenterCrop(side) on an NCHW float tensor."""
    import torch.nn.functional as F
    h, w = x.shape[-2:]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = side, int(side * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    y = F.interpolate(x, size=[new_h, new_w], mode="bilinear", align_corners=False,
                      antialias=False)
    top, left = int(round((new_h - side) / 2.0)), int(round((new_w - side) / 2.0))
    return y[..., top:top + side, left:left + side]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="checkout of GeorgeCazenavette/mtt-distillation")
    add_commit_arg(ap, "GeorgeCazenavette/mtt-distillation")
    args = ap.parse_args()
    add_reference_path(args.ref)
    import torch
    import torch.nn.functional as F
    stub_torchvision()
    from utils import config  # the authors' class lists (utils.py:17-44)

    ids = list(config.dict["imagenette"])
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)  # utils.py:91-92
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    rng = np.random.default_rng(7)
    out = {"subset_ids": np.asarray(ids), "side": np.asarray(R)}
    for split, items in (("train", TRAIN), ("validation", VAL)):
        sq, cr, sq_raw, keep_labels = [], [], [], []
        records = []
        for i, ((h, w), label) in enumerate(items):
            u8 = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            fname = f"{split}_{(7 * i) % 10}_{i}.png"
            out[f"{split}_{i}_u8"] = u8
            out[f"{split}_{i}_label"] = np.asarray(label)
            out[f"{split}_{i}_file_name"] = np.asarray(fname)
            records.append((label, fname, u8))
        for label, fname, u8 in sorted(records, key=lambda r: (r[0], r[1])):  # ImageFolder
            if label not in ids:  # utils.py:105/108: np.isin(targets, img_net_classes)
                continue
            x = torch.from_numpy(u8).permute(2, 0, 1)[None].float().div(255)  # ToTensor
            xn = (x - mean) / std                                             # Normalize
            sq.append(F.interpolate(xn, size=[R, R], mode="bilinear", align_corners=False,
                                    antialias=False)[0])                      # Resize((R, R))
            sq_raw.append(F.interpolate(x, size=[R, R], mode="bilinear", align_corners=False,
                                        antialias=False)[0])
            cr.append(_resize_crop(xn, R)[0])
            keep_labels.append(ids.index(label))                              # utils.py:109-111
        out[f"{split}_n"] = np.asarray(len(items))
        out[f"{split}_squash"] = torch.stack(sq).numpy()
        out[f"{split}_squash_pixels"] = torch.stack(sq_raw).numpy()
        out[f"{split}_crop"] = torch.stack(cr).numpy()
        out[f"{split}_labels"] = np.asarray(keep_labels)
    save_fixture("data_imagenet", repo="GeorgeCazenavette/mtt-distillation", ref=args.ref,
                 commit=args.commit,
                 script=__file__, **out)


if __name__ == "__main__":
    main()
