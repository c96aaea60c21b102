"""jaxdd.viz grids of every modality (tiny arrays: shapes, dtype, known pixels)."""
import numpy as np
import pytest
from PIL import Image

from jaxdd import viz


def test_colormap_ends_and_middle():
    c = viz.colormap(np.array([0.0, 0.5, 1.0, -3.0, 7.0]))
    np.testing.assert_allclose(c[0], viz.RAMP[0])
    np.testing.assert_allclose(c[1], viz.RAMP[2])  # 5 anchors: 0.5 is the middle one
    np.testing.assert_allclose(c[2], viz.RAMP[-1])
    np.testing.assert_allclose(c[3], viz.RAMP[0])  # clipped
    np.testing.assert_allclose(c[4], viz.RAMP[-1])


def test_image_grid_is_make_grid():
    x = np.random.default_rng(0).random((3, 4, 5, 3), dtype=np.float32)
    np.testing.assert_array_equal(viz.modality_grid(x, "image", nrow=2, upscale=1),
                                  viz.make_grid(x, nrow=2, upscale=1))


def test_audio_grid_low_frequency_at_the_bottom_per_image_scale():
    x = np.zeros((2, 4, 3, 1), np.float32)
    x[0, 0, :, 0] = 5.0           # the lowest bin of spectrogram 0 loud
    x[1] = 100.0                  # constant: normalizes to 0
    x[1, 3, 1, 0] = 101.0         # the highest bin, middle frame: its maximum
    g = viz.modality_grid(x, "audio", nrow=2, upscale=1)
    assert g.dtype == np.uint8 and g.shape == (1 + 4 + 1, 1 + 2 * (3 + 1), 3)
    yellow = np.round(viz.RAMP[-1] * 255).astype(np.uint8)
    violet = np.round(viz.RAMP[0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(g[4, 1], yellow)     # bin 0 -> the bottom row
    np.testing.assert_array_equal(g[1, 1], violet)     # the top row of image 0: quiet
    np.testing.assert_array_equal(g[1, 1 + 4 + 1], yellow)  # image 1: bin 3 -> the top
    np.testing.assert_array_equal(g[4, 1 + 4 + 1], violet)


def test_video_grid_one_row_per_clip_frames_left_to_right():
    x = np.zeros((2, 3, 2, 2, 3), np.float32)
    x[1, 2] = 1.0                 # clip 1, its last frame white
    g = viz.modality_grid(x, "video", nrow=99, upscale=1)
    assert g.dtype == np.uint8 and g.shape == (1 + 2 * 3, 1 + 3 * 3, 3)
    np.testing.assert_array_equal(g[1 + 3, 1 + 2 * 3], [255, 255, 255])
    np.testing.assert_array_equal(g[1 + 3, 1], [0, 0, 0])      # clip 1, frame 0
    np.testing.assert_array_equal(g[1, 1 + 2 * 3], [0, 0, 0])  # clip 0, frame 2
    with pytest.raises(ValueError, match="video grid"):
        viz.modality_grid(x[0], "video")


def test_voxel_grid_three_max_projections():
    x = np.zeros((1, 2, 3, 4, 1), np.float32)
    x[0, 1, 2, 3, 0] = 2.0        # one filled voxel at (d, h, w) = (1, 2, 3)
    p = viz.voxel_projections(x, gap=1)
    assert p.shape == (1, 4, 3 * 4 + 2, 3)
    views = [p[0, :, j * 5:j * 5 + 4, 0] for j in range(3)]
    hw, dw, dh = views[0][:3, :4], views[1][:2, :4], views[2][:2, :3]
    assert hw[2, 3] == 1.0 and hw.sum() == 1.0  # max along D: an (h, w) view
    assert dw[1, 3] == 1.0 and dw.sum() == 1.0  # along H: (d, w)
    assert dh[1, 2] == 1.0 and dh.sum() == 1.0  # along W: (d, h)
    assert (views[0][3] == 1.0).all() and (p[0, :, 4] == 1.0).all()  # padding, gap: white
    g = viz.modality_grid(x, "voxel", upscale=1)
    assert g.dtype == np.uint8 and g.shape == (3 + 4 + 3, 3 + 14 + 3, 3)  # pad 3 around
    np.testing.assert_array_equal(g[3 + 2, 3 + 3], [255, 255, 255])
    np.testing.assert_array_equal(g[3 + 0, 3 + 0], [0, 0, 0])


def test_save_modality_grid_writes_a_png(tmp_path):
    x = np.random.default_rng(1).normal(size=(3, 8, 8, 1)).astype(np.float32)
    path = viz.save_modality_grid(str(tmp_path / "g" / "a.png"), x, "audio", nrow=3)
    im = np.asarray(Image.open(path))
    np.testing.assert_array_equal(im, viz.modality_grid(x, "audio", nrow=3))
    with pytest.raises(ValueError, match="modality must be"):
        viz.modality_grid(x, "smell")
