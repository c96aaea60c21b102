"""DC (gradient matching, siamese DSA) with NSD (spectra x learnable separable transforms).

Embedded default (offline, 2 CPU cores): digits at 16x16x1, ConvNetD2W32, IPC 1, t3 = t4 =
4 (the paper's H/2 = 8 does not fit the 256-float budget of one 16x16x1 image per class):
one spectrum tensor (5 x 1 x 4 x 4) and one kernel set decode 8 images per class in 249
floats. 300 iterations with 64 real images per class (IPC 1: a fresh network
every iteration), then 5 networks x 1000 epochs and the random-real baseline:

    python launch/distill.py --config=configs/dc_nsd.py

Expected: test accuracy 89.0 +- 0.5 % (final epoch, mean +- std over 5 networks; random real
at IPC 1: 68.0 +- 5.1 %), about 3 minutes wall on 2 shared CPU cores (seed 0; measured
2026-12-02, docs/results.md "DM and DC with every parameterization").

NSD was published with TM only (docs/methods.md): these variants combine NSD's published
sizes (random init, SGD momentum 0.9) with the DC recipe (1000 DC iterations = 1000 x
outer_loop loop iterations, DC's outer/inner loops, batch_real 256); the learning rate is
not published:

    python launch/distill.py --config=configs/dc_nsd.py:cifar10,ipc=10

Any other (dataset, ipc) -- another IPC, MNIST, an npz file -- gets a derived setting, NOT a
published one (cfg.source "derived, not published: ..."; jaxdd.config.derive): the NSD size
rule with the DC recipe (and the digits setting's image-RMS guard where no NSD DC result has
the image shape); DC's loops of the nearest IPC get_loops defines where it defines none.
"""
from jaxdd import config as C

# NSD reports DC + NSD at CIFAR-10 IPC 10 only (Table 5); convention: jaxdd/published
VARIANTS = ["cifar10,ipc=10"]


def get_config(arg=None):  # the shared recipe + its hooks: jaxdd.config.matching_config
    return C.matching_config("dc", "nsd", arg)
