"""CFM (UniDD curriculum frequency matching) with the pixel parameterization, through the
generic loop (`jaxdd.objective.cfm`; builder: `jaxdd.config.cfm_config`).

Embedded default (offline, 2 CPU cores): digits at 16x16, teacher = student =
ConvNetD2W32BN (squeezed 30 epochs, cached in the workdir), IPC 10, 200 recover iterations
per class-batch, HFM filter with the cosine beta curriculum, then the relabel protocol
(5 students x 300 epochs on the teacher's soft labels):

    python launch/distill.py --config=configs/cfm_pixel.py

CIFAR (UniDD's settings; needs a GPU: 200 squeeze epochs, IPC x 1000 recover iterations):

    python launch/distill.py --config=configs/cfm_pixel.py:cifar10,ipc=10
    python launch/distill.py --config=configs/cfm_pixel.py:cifar100,ipc=50,arch=resnet18

Shortcuts: ipc, arch, filter (hfm | lfm), curriculum, beta, signal (mean | class),
recover_iterations, epochs (relabel); any field by its dotted path.
Accuracies use the soft-label protocol: NOT comparable with the TM / DM / DC tables.
Other data (MNIST, an npz file: `...:/data/my.npz,ipc=10`) and unpublished settings get a
derived config (cfg.source "derived, not published: ..."; jaxdd.config.cfm).
"""
from jaxdd import config as C

VARIANTS = [f"{d},ipc={i}" for d in ("cifar10", "cifar100") for i in (10, 50)]


def get_config(arg=None):
    return C.cfm_config("pixel", arg)
