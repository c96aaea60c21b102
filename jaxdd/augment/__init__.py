"""DSA: differentiable siamese augmentation (Zhao & Bilen, ICML 2021) in pure JAX.

Behaviour follows ``DiffAugment`` / ``ParamDiffAug`` of the DC/DSA/DM/MTT/FreD/DDiF PyTorch
code (strategy ``'color_crop_cutout_flip_scale_rotate'``, mode ``'S'``), rewritten as pure,
jit-able, differentiable functions of an explicit PRNG key.

Images are float NHWC ``(N, H, W, C)``, any ``H, W, C`` (C=1 digits work); audio
spectrograms ``(N, F, T, 1)`` are such images. ``dsa`` / ``dsa_draw`` / ``dsa_apply`` /
``apply_group`` / ``make_augment`` also take 5-D batches, naming their ``modality``
(``check_modality``):

  video  (N, T, H, W, C): one draw per CLIP, applied to each of its T frames as to an image
         (frames folded into the batch, one vectorized call; contrast's mean is per frame):
         ``dsa(key, v, modality='video')[:, t] == dsa(key, v[:, t])``. An extension: the
         authors' video DM runs no augmentation (aailab-kaist/DDiF @ b628e7b,
         Video/distill_DDiF.py:103-134 embeds the raw clips; its evaluation `epoch` in
         Video/utils.py:822-850 only standardizes them).
  voxel  (N, D, H, W, 1): strategy 'none' only, the authors' setting (DDiF
         3D_Voxel/main_DM.py:34 and main_DC.py:35 default ``--dsa_strategy ''``, which
         ``DiffAugment`` returns unchanged, 3D_Voxel/utils.py:490-491; sdh0818/FreD @ 9f35a7a
         3D-MNIST/main_DM_FreD.py:129 has the option commented out). An op group on voxels
         raises a ValueError naming the strategy and the modality (no 3-D DSA is
         implemented).

The individual keyed ops below (``brightness(key, x)`` ...) stay 4-D only.

Op groups (names usable in a strategy string joined by ``'_'``):

  ========  ==============================================================================
  color     brightness, then saturation, then contrast (all three, as in DSA)
  crop      integer translation by t ~ U{-s..s} per axis, s = int(side * 0.125 + 0.5),
            zero fill (DSA's pad-by-1 + clamp gather)
  cutout    zero a square of side c = int(side * 0.5 + 0.5) centred at o ~ U{0..side-(c%2)}
            (clipped to the image)
  flip      horizontal (W axis) flip with probability 0.5
  scale     affine, x' = sx * x, y' = sy * y with sx, sy ~ U(1/1.2, 1.2)
  rotate    affine rotation by a ~ U(-15, 15) degrees
  ========  ==============================================================================

Formulas (u ~ U(0, 1) per sample, ``DSAParams`` defaults):
  brightness  x + (u - 0.5) * brightness
  saturation  m + (x - m) * (u * saturation),  m = mean over channels (per pixel)
  contrast    m + (x - m) * (u + contrast),    m = mean over H, W, C (per image)

Affine ops use PyTorch's ``F.affine_grid`` + ``F.grid_sample`` semantics, bilinear
interpolation and zero padding. With ``align_corners=True`` (the default; MTT utils.py:563-564
and 577-578 at 50dccea; FreD/DDiF TM and UniDD also pass it explicitly): for output pixel
(i, j) with normalised coordinates ``xn = -1 + 2 j / (W - 1)``, ``yn = -1 + 2 i / (H - 1)``,
the source point is ``(gx, gy) = theta @ (xn, yn, 1)`` and it is read at pixel
``((gx + 1) / 2 * (W - 1), (gy + 1) / 2 * (H - 1))``. With ``DSAParams(align_corners=False)``
(PyTorch's default since 1.3, hence what the DM/DC code of FreD and DDiF gets: their
DM/utils.py and DC/utils.py call ``F.affine_grid(theta, x.shape)`` / ``F.grid_sample(x, grid)``
without the argument -- e.g. DDiF DM/utils.py:662-663, 677-678 -- under torch 1.11 (FreD
requirements.txt) / 2.1 (DDiF requirements.txt)) pixel centres sit at
``xn = (2 j + 1) / W - 1`` and the source is read at ``((gx + 1) * W - 1) / 2``. For DSA's
thetas (no translation) the two conventions give the same pixel-unit map for scale and for
rotation of a square image; they differ only for rotation of a non-square image (aspect
factor (W-1)/(H-1) vs W/H), so every published (square) setting is unaffected. The
rotation matrix is DSA's ``[[cos a, -sin a, 0], [sin a, cos a, 0]]``, so a = +90 degrees on
a square image equals ``np.rot90(x, k=1, axes=(1, 2))`` (align_corners=True).

Parity with the authors' code (tests/test_parity_dsa.py, fixture made from MTT utils.py and
DDiF DM/utils.py by tests/parity/make_dsa.py): every op given the same sampled parameters
(the uniforms torch.rand drew, or the integers torch.randint drew for crop / cutout) gives
the authors' output and input gradient at float32 precision, in both align_corners
conventions; mode 'M' and 'S' chains and the seeded (siamese, batch-shared) call too. The
random streams differ on purpose (JAX keys vs torch's global generator); the distributions
are the same.

Modes:
  'S' (single; MTT default): one op group of the strategy is drawn uniformly per call (one
      choice for the whole batch, via ``lax.switch`` so the function compiles once), with
      per-sample parameters.
  'M' (multiple): every group of the strategy is applied, in order.
Strategy ``'none'`` / ``'None'`` / ``''`` / ``None`` returns ``x`` unchanged.

Randomness and the siamese property:
  * ``key`` is split into an op-choice key ``k_op`` and a parameter key ``k_par``
    (``split_key``). The op group chosen in mode 'S' depends only on ``k_op``
    (``sample_op``), never on the data or the batch size.
  * All parameters of a call come from one per-sample uniform block
    ``U = draw_uniforms(key, N)`` of shape (N, 11); each group reads its own fixed columns
    (``GROUP_COLUMNS``). So with the same key a group gets the same parameters whatever the
    rest of the strategy is, and mode 'S' applying group g equals ``dsa(key, x, strategy=g)``.
  * Row i of U is drawn from ``fold_in(k, i)``: it depends on (key, i) only, never on the
    batch size. Hence the same key on two batches gives the same op and the same
    per-sample parameters (siamese). With different batch sizes N1 < N2 the first N1
    samples of both batches get identical transforms and the extra samples of the larger
    batch get their own parameters: ``dsa(key, x)[:k] == dsa(key, x[:k])`` (all ops act
    per image, the colour means included).
  * ``DSAParams(batchmode=True)`` reproduces DSA's seeded ("siamese") call
    ``DiffAugment(x, seed=s)`` of DC/DM, where every sample of the batch shares the
    parameters of sample 0; then real and synthetic batches of any sizes get exactly the
    same transform.
  * The individual keyed ops (``brightness(key, x, params)`` ...) draw
    ``per_sample_uniform(key, N, (k,))`` themselves; the ``apply_<op>(x, u, params)``
    functions take explicit uniforms.

Modules: ``params`` (DSAParams, per-sample uniform draws), ``ops`` (colour, crop, cutout,
flip), ``affine`` (affine grid / bilinear sampling, scale, rotate), ``strategy`` (strategy
and mode, ``dsa_draw`` / ``dsa_apply`` / ``dsa``, ``Augment``), ``mix`` (the CFM
augmentations below). Every public name is importable from ``jaxdd.augment`` itself.

Outside DSA, the training-set augmentations of the CFM pipeline (jaxdd.teacher) are built from
the same kernels: ``random_crop_flip`` (torchvision RandomCrop(padding) + flip, the
teacher's) and ``cutmix`` (the soft-label students').
"""

from __future__ import annotations

from jaxdd.augment.params import (DSAParams, per_sample_keys, per_sample_uniform)
from jaxdd.augment.ops import (
    apply_brightness, apply_contrast, apply_crop, apply_cutout, apply_flip, apply_saturation,
    brightness, contrast, crop, crop_shift_ranges, crop_shifts, crop_shifts_from_uniform,
    cutout, cutout_at, cutout_mask, cutout_offset_ranges, cutout_offsets,
    cutout_offsets_from_uniform, cutout_size, flip, flip_mask, saturation, translate)
from jaxdd.augment.affine import (
    affine_grid, affine_sample, apply_rotate, apply_scale, grid_sample, rotate, rotate_theta,
    rotate_theta_from_uniform, rotation_matrix, scale, scale_theta, scale_theta_from_uniform)
from jaxdd.augment.strategy import (
    GROUP_COLUMNS, GROUP_ID, GROUPS, MODALITIES, NUM_UNIFORMS, Augment, apply_group,
    check_modality, draw_uniforms, dsa, dsa_apply, dsa_draw, make_augment, parse_strategy,
    sample_op, split_key)
from jaxdd.augment.mix import cutmix, random_crop_flip

__all__ = [
    "DSAParams",
    "dsa",
    "sample_op",
    "parse_strategy",
    "split_key",
    "draw_uniforms",
    "apply_group",
    "GROUPS",
    "GROUP_ID",
    "GROUP_COLUMNS",
    "NUM_UNIFORMS",
    "MODALITIES",
    "check_modality",
    # individual ops f(key, x, params) -> x'
    "brightness",
    "saturation",
    "contrast",
    "crop",
    "cutout",
    "flip",
    "scale",
    "rotate",
    # the same ops with explicit per-sample uniforms: apply_<op>(x, u, params)
    "apply_brightness",
    "apply_saturation",
    "apply_contrast",
    "apply_crop",
    "apply_cutout",
    "apply_flip",
    "apply_scale",
    "apply_rotate",
    # parameter samplers and deterministic kernels
    "per_sample_keys",
    "per_sample_uniform",
    "crop_shifts",
    "crop_shifts_from_uniform",
    "crop_shift_ranges",
    "cutout_size",
    "cutout_offsets",
    "cutout_offsets_from_uniform",
    "cutout_offset_ranges",
    "flip_mask",
    "scale_theta",
    "scale_theta_from_uniform",
    "rotate_theta",
    "rotate_theta_from_uniform",
    "rotation_matrix",
    "translate",
    "cutout_mask",
    "affine_grid",
    "grid_sample",
    "affine_sample",
    "cutout_at",
    # training-set augmentations of the CFM pipeline (teacher, soft-label students)
    "random_crop_flip",
    "cutmix",
]
