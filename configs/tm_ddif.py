"""TM with DDiF (one SIREN neural field per synthetic instance). The main command:

    python launch/distill.py --config=configs/tm_ddif.py

Embedded default: digits at 16x16x1, ConvNetD2W32, IPC 1 -> SIREN width 6, 2 sine layers
(67 floats per field), floor(1 x 256 / 67) = 3 fields per class; warm-up of all 30 fields
at once; experts built if missing. Offline on 2 CPU cores in under 10 minutes; expected
result in docs/results.md (final-epoch accuracy, mean +- std over 5 networks).

Published settings (DDiF ICLR 2025, aailab-kaist/DDiF; jaxdd.published.ddif gives the
source of every value; reported CIFAR-10 66.5 / 74.0 / 77.5, CIFAR-100 42.1 / 46.0 / 49.9,
ImageNette-128 IPC 1 72.0). VARIANTS lists them:

    python launch/distill.py --config=configs/tm_ddif.py:cifar10,ipc=1    # width 6, 37 fields/class, ZCA
    python launch/distill.py --config=configs/tm_ddif.py:cifar10,ipc=10   # width 6, 379 fields/class, ZCA
    python launch/distill.py --config=configs/tm_ddif.py:cifar10,ipc=50   # width 20, 282 fields/class
    python launch/distill.py --config=configs/tm_ddif.py:cifar100,ipc=10  # width 15
    python launch/distill.py --config=configs/tm_ddif.py:imagenette,ipc=1 # 3 layers, w 20, w0 40

Field sizes, syn_steps / expert_epochs / max_start_epoch / lr_lr / lr_teacher come from the
authors' TM/hyper_params.py; 15,000 iterations (main_TM.py default, paper App. B.4); ZCA on
CIFAR-10 IPC 1/10 and CIFAR-100 IPC 1 only (App. B.4); warm-up 5000 Adam steps at 5e-4.
The field learning rate (Adam lr_nf) 1e-4 and batch_syn 102 are the ImageNette IPC 1
script's; the CIFAR lr_nf / batch_syn are in no file of the authors' repository (lr_nf
1e-4 and batch_syn 0 = all fields every student step are used). With batch_syn > 0 each
iteration decodes only syn_steps x batch_syn random fields (decode_subset, as the authors'
code) and only those fields (and their Adam state) move.

Any other (dataset, ipc) gets a derived setting (cfg.source "derived, not published: ..."):
the nearest DDiF row of the same image shape (field, TM hyperparameters, run settings; ZCA
only for the same dataset), else the digits TM hyperparameters and field (width 6, 2 sine
layers; as many fields as the budget holds) with DDiF's run settings (jaxdd.config.derive).

Evaluate a DDiF set at another resolution:
    python launch/evaluate.py --synthetic=workdirs/tm_ddif-default/synthetic.msgpack --resolution=32
"""
from jaxdd import config as C
from jaxdd.published import ddif as P

# config strings of the published settings (convention: jaxdd/published/__init__.py)
VARIANTS = [f"{d},ipc={i}" for d, i in P.TM if d in C.DATASETS]


def get_config(arg=None):  # the TM builder: jaxdd.config.tm_config
    return C.tm_config("ddif", arg)
