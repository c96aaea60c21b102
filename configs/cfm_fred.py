"""CFM (UniDD curriculum frequency matching) with the fred parameterization, through the
generic loop (`jaxdd.objective.cfm`; builder: `jaxdd.config.cfm_config`).

Embedded default (offline, 2 CPU cores): digits at 16x16, teacher = student =
ConvNetD2W32BN (squeezed 30 epochs, cached in the workdir), IPC 10, 200 recover iterations
per class-batch, HFM filter with the cosine beta curriculum, then the relabel protocol
(5 students x 300 epochs on the teacher's soft labels):

    python launch/distill.py --config=configs/cfm_fred.py

CIFAR (UniDD's pixel recipe, not a published setting for this parameterization; needs a GPU: 200 squeeze epochs, IPC x 1000 recover iterations):

    python launch/distill.py --config=configs/cfm_fred.py:cifar10,ipc=10
    python launch/distill.py --config=configs/cfm_fred.py:cifar100,ipc=50,arch=resnet18

Shortcuts: ipc, arch, filter (hfm | lfm), curriculum, beta, signal (mean | class),
recover_iterations, epochs (relabel); any field by its dotted path.
Accuracies use the soft-label protocol: NOT comparable with the TM / DM / DC tables.
"""
from jaxdd import config as C

# UniDD publishes CFM with pixels only: the CIFAR strings above run UniDD's recipe with this
# parameterization (jaxdd's choice of its optimizer: jaxdd.config.CFM_PARAMS), not a published row
VARIANTS = []


def get_config(arg=None):
    return C.cfm_config("fred", arg)
