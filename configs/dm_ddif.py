"""DM (distribution matching) with DDiF (one SIREN neural field per synthetic instance).

Embedded default (offline, 2 CPU cores): digits at 16x16x1, ConvNetD2W32, IPC 1, SIREN
width 6 with 2 sine layers (67 floats per field) -> 3 fields per class, warm-up 1000 Adam
steps; 500 DM iterations with 64 real images per class, then 5 networks x 1000
epochs and the random-real baseline:

    python launch/distill.py --config=configs/dm_ddif.py

Expected: test accuracy 91.4 +- 0.8 % (final epoch, mean +- std over 5 networks; random real
at IPC 1: 68.0 +- 5.1 %), about 2 minutes wall on 2 shared CPU cores (seed 0; measured
2026-12-02, docs/results.md "DM and DC with every parameterization").

Published settings (aailab-kaist/DDiF DM/hyper_params.py field sizes, main_DM.py defaults
and DM/scripts/run_DDiF.sh; jaxdd.published.ddif gives the source of every value):
Adam lr_nf 5e-5, 20000 iterations, batch_real 256, batch_syn 0 (all fields), no ZCA,
warm-up 5000 steps at 5e-4, evaluation every 2000 iterations (1000 epochs, 5 networks).
The authors' script is the ImageNette IPC 1 run; the CIFAR rows use their field table with
the same script values. VARIANTS lists them:

    python launch/distill.py --config=configs/dm_ddif.py:imagenette,ipc=1
    python launch/distill.py --config=configs/dm_ddif.py:cifar10,ipc=10

Any other (dataset, ipc) -- another IPC, MNIST, an npz file -- gets a derived setting, NOT a
published one (cfg.source "derived, not published: ..."; jaxdd.config.derive): the nearest
DDiF DM field of the same image shape, else the digits field (width 6, 2 sine layers; as
many fields as the budget holds), with DDiF's DM run settings.

Video and voxels (aailab-kaist/DDiF Video/ and 3D_Voxel/; jaxdd.published.ddif_modal):
MiniUCF IPC 1 / 5 (ConvNet3D, 5000 iterations, lr_nf 1e-4, 1 / 5 fields per class),
ModelNet-10 and ShapeNet IPC 1 (Conv3DNet width 128, 32^3, lr_nf 1e-4); no augmentation.
Embedded (offline, derived): digits_video, digits_voxel, synth_speech (jaxdd.config.modal):

    python launch/distill.py --config=configs/dm_ddif.py:modelnet10
    python launch/distill.py --config=configs/dm_ddif.py:digits_voxel
"""
from jaxdd import config as C
from jaxdd.published import ddif as P
from jaxdd.published import ddif_modal as M

# config strings of the published settings (convention: jaxdd/published/__init__.py)
VARIANTS = [f"{d},ipc={i}" for d, i in P.FIELDS_DM if d in C.DATASETS]
# video / audio / voxel rows (jaxdd.published.ddif_modal)
VARIANTS += [f"{d},ipc={i}" for d, i in M.DM]


def get_config(arg=None):  # the shared recipe + its hooks: jaxdd.config.matching_config
    return C.matching_config("dm", "ddif", arg)
