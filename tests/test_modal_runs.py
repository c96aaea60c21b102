"""The loop end to end on the other modalities (issue 28), at toy sizes: a video npz and a
voxel npz distilled by `jaxdd.distill.run` (DM and DC, decoded sets of the data's rank,
grids drawn per modality, the final evaluation on the set), and the bad inputs refused
before any work (a model of the wrong rank, an augmentation the modality has not)."""
import json
import os

import numpy as np
import pytest
from PIL import Image
from tinyrun import set_fields

from jaxdd import config as C
from jaxdd import distill


def _npz(path, grid, channels, k=3, n=24, seed=0):
    """k classes of (grid, channels) arrays: a class prototype + noise, in [0, 1]."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(k), n // k).astype(np.int32)
    base = rng.uniform(size=(k,) + grid + (channels,))
    x = np.clip(base[labels] + 0.2 * rng.normal(size=(len(labels),) + grid + (channels,)),
                0, 1).astype(np.float32)
    np.savez(path, images=x, labels=labels, test_images=x[::2], test_labels=labels[::2])
    return str(path)


def _config(objective, param, npz, model, **fields):
    cfg = C.matching_config(objective, param, npz)
    cfg.model.name = model
    cfg.iterations = 2
    cfg.log_every = 1
    cfg.checkpoint_every = 2
    cfg.objective.batch_real = 4
    cfg.eval.num_nets = cfg.eval.final_nets = 1
    cfg.eval.epochs = 2
    cfg.eval.random_real_baseline = False
    return set_fields(cfg, **fields)


@pytest.mark.parametrize("case", ["video_dm_pixel", "voxel_dc_fred"])
def test_a_modality_distills_end_to_end(tmp_path, case):
    if case == "video_dm_pixel":
        npz = _npz(tmp_path / "clips.npz", (4, 16, 16), 3)
        cfg = _config("dm", "pixel", npz, "ConvNet3DD2W4")
        rank, modality = 5, "video"
    else:
        npz = _npz(tmp_path / "vox.npz", (8, 8, 8), 1)
        cfg = _config("dc", "fred", npz, "Conv3DNetD2W4")
        rank, modality = 5, "voxel"
    assert cfg.dsa_strategy == "none"  # the authors augment no video / voxel data
    workdir = str(tmp_path / "run")
    result = distill.run(cfg, workdir, progress=False)
    assert result["step"] == cfg.iterations
    assert 0.0 <= result["final_eval"]["mean"] <= 1.0
    assert result["budget"] <= result["pixel_budget"]
    run = distill.Run(cfg, workdir, progress=False)  # resumes the finished run
    decoded = np.asarray(run.decode_all())
    assert decoded.ndim == rank and decoded.shape[1:] == run.train_ds.image_shape
    assert run.train_ds.modality == modality
    grid = np.asarray(Image.open(os.path.join(workdir, "grids", "final.png")))
    assert grid.ndim == 3 and grid.shape[2] == 3 and grid.std() > 0
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        losses = [json.loads(line)["loss"] for line in f if '"loss"' in line]
    assert losses and all(np.isfinite(losses))


def _refused(cfg, workdir, *needles):
    with pytest.raises(Exception) as e:
        distill.run(cfg, workdir, progress=False)
    msg = str(e.value)
    for needle in needles:
        assert needle in msg, msg
    assert not os.path.exists(workdir) or not os.listdir(workdir)  # nothing written


def test_bad_modality_inputs_are_refused_before_any_work(tmp_path):
    vox = _npz(tmp_path / "vox.npz", (8, 8, 8), 1)
    # a 2-D network on voxels
    _refused(_config("dm", "pixel", vox, "ConvNetD1W4"), str(tmp_path / "a"),
             "ConvNetD1W4", "Conv3DNet")
    # an augmentation voxels do not have
    _refused(_config("dm", "pixel", vox, "Conv3DNetD2W4", dsa_strategy="flip"),
             str(tmp_path / "b"), "dsa_strategy", "voxel")
    # a 3-D network on images
    img = _npz(tmp_path / "img.npz", (8, 8), 1)
    _refused(_config("dm", "pixel", img, "Conv3DNetD2W4"), str(tmp_path / "c"),
             "Conv3DNet")
