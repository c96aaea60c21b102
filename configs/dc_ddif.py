"""DC (gradient matching, siamese DSA) with DDiF (one SIREN neural field per instance).

Embedded default (offline, 2 CPU cores): digits at 16x16x1, ConvNetD2W32, IPC 1, SIREN
width 6 with 2 sine layers (67 floats per field) -> 3 fields per class, warm-up 1000 Adam
steps; 300 iterations with 64 real images per class (IPC 1: a fresh network
every iteration), then 5 networks x 1000 epochs and the random-real baseline:

    python launch/distill.py --config=configs/dc_ddif.py

Expected: test accuracy 89.0 +- 0.8 % (final epoch, mean +- std over 5 networks; random real
at IPC 1: 68.0 +- 5.1 %), about 4 minutes wall on 2 shared CPU cores (seed 0; measured
2026-12-02, docs/results.md "DM and DC with every parameterization").

Published settings (aailab-kaist/DDiF DC/hyper_params.py field sizes, main_DC.py defaults
and DC/scripts/run_DDiF.sh; jaxdd.published.ddif gives the source of every value):
Adam lr_nf 5e-5, 1000 DC iterations (= 1000 x outer_loop jaxdd iterations, DC's
get_loops), batch_real 256, batch_syn 0 (all fields), no ZCA, warm-up 5000 steps at 5e-4,
evaluation every 500 DC iterations with 300 epochs (main_DC.py --epoch_eval_train 300),
5 networks. VARIANTS lists them:

    python launch/distill.py --config=configs/dc_ddif.py:imagenette,ipc=1
    python launch/distill.py --config=configs/dc_ddif.py:cifar10,ipc=10

Any other (dataset, ipc) -- another IPC, MNIST, an npz file -- gets a derived setting, NOT a
published one (cfg.source "derived, not published: ..."; jaxdd.config.derive): the nearest
DDiF DC field of the same image shape, else the digits field (width 6, 2 sine layers; as
many fields as the budget holds), with DDiF's DC run settings; DC's loops of the nearest IPC
get_loops defines where it defines none.

Voxels and audio (jaxdd.published.ddif_modal): ModelNet-10 / ShapeNet IPC 1 (3D_Voxel/
main_DC.py, 1000 evaluation epochs), Mini Speech Commands IPC 10 / 20 (paper Table 9 (a)
only: synthetic batch 64 per class, lr_nf 1e-5 / 1e-4, ConvNetD4; the field is jaxdd's).
Embedded (offline, derived): digits_video, digits_voxel, synth_speech (jaxdd.config.modal):

    python launch/distill.py --config=configs/dc_ddif.py:mini_speech_commands,ipc=10
    python launch/distill.py --config=configs/dc_ddif.py:synth_speech
"""
from jaxdd import config as C
from jaxdd.published import ddif as P
from jaxdd.published import ddif_modal as M

# config strings of the published settings (convention: jaxdd/published/__init__.py)
VARIANTS = [f"{d},ipc={i}" for d, i in P.FIELDS_DC if d in C.DATASETS]
# video / audio / voxel rows (jaxdd.published.ddif_modal)
VARIANTS += [f"{d},ipc={i}" for d, i in M.DC]


def get_config(arg=None):  # the shared recipe + its hooks: jaxdd.config.matching_config
    return C.matching_config("dc", "ddif", arg)
