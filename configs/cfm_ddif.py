"""CFM (UniDD curriculum frequency matching) with the ddif parameterization, through the
generic loop: the recipe of configs/cfm_pixel.py (teacher, class-batch curriculum, HFM filter,
soft-label relabel protocol, shortcuts: its docstring; builder `jaxdd.config.cfm_config`)
with this parameterization and its synthetic optimizer (`jaxdd.config.CFM_PARAMS`).

    python launch/distill.py --config=configs/cfm_ddif.py       # digits, 2 CPU cores
    # UniDD's pixel recipe at CIFAR scale (needs a GPU: 200 squeeze epochs, IPC x 1000
    # recover iterations):
    python launch/distill.py --config=configs/cfm_ddif.py:cifar10,ipc=10
    python launch/distill.py --config=configs/cfm_ddif.py:cifar100,ipc=50,arch=resnet18

Accuracies use the soft-label protocol: NOT comparable with the TM / DM / DC tables.
Other data (MNIST, an npz file: `...:/data/my.npz,ipc=10`) and unpublished settings get a
derived config (cfg.source "derived, not published: ..."; jaxdd.config.cfm).
"""
from jaxdd import config as C

# UniDD publishes CFM with pixels only: the CIFAR strings above run UniDD's recipe with this
# parameterization (jaxdd's choice of its optimizer), not a published row
VARIANTS = []


def get_config(arg=None):
    return C.cfm_config("ddif", arg)
