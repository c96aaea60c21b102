"""DM (distribution matching) with NSD (spectrum tensors x learnable separable transforms).

Embedded default (offline, 2 CPU cores): digits at 16x16x1, ConvNetD2W32, IPC 1. The
paper's t3 = t4 = H/2 = 8 kernels alone (2 x 8 x 16 = 256 floats) fill the 256-float
budget, so t3 = t4 = 4: one spectrum tensor (5 x 1 x 4 x 4) and one kernel set decode 8
images per class in 249 floats. 500 DM iterations with 64 real images per
class, then 5 networks x 1000 epochs and the random-real baseline:

    python launch/distill.py --config=configs/dm_nsd.py

Expected: test accuracy 87.2 +- 1.2 % (final epoch, mean +- std over 5 networks; random real
at IPC 1: 68.0 +- 5.1 %), about 2 minutes wall on 2 shared CPU cores (seed 0; measured
2026-12-02, docs/results.md "DM and DC with every parameterization").

NSD was published with TM only (docs/methods.md): these variants combine NSD's published
sizes (t2 = C, t3 = t4 = H/2 for IPC <= 10, 7/8 H above, random init, SGD momentum 0.9)
with the DM recipe (20000 iterations, batch_real 256); the learning rate is not published:

    python launch/distill.py --config=configs/dm_nsd.py:cifar10,ipc=10

Any other (dataset, ipc) -- another IPC, MNIST, an npz file -- gets a derived setting, NOT a
published one (cfg.source "derived, not published: ..."; jaxdd.config.derive): the NSD size
rule with the DM recipe (and the digits setting's image-RMS guard where no NSD DM result has
the image shape).
"""
from jaxdd import config as C

# NSD reports DM + NSD at CIFAR-10 IPC 10 only (Table 5); convention: jaxdd/published
VARIANTS = ["cifar10,ipc=10"]


def get_config(arg=None):  # the shared recipe + its hooks: jaxdd.config.matching_config
    return C.matching_config("dm", "nsd", arg)
