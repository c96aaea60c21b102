"""CFM (UniDD curriculum frequency matching) with pixels: the same config as
configs/cfm_pixel.py, under the method's name (`python launch/cfm.py --config=configs/cfm.py`).

CFM runs through the generic loop (`jaxdd.objective.cfm`, builder `jaxdd.config.cfm_config`):

    python launch/distill.py --config=configs/cfm_pixel.py        # or launch/cfm.py
    python launch/distill.py --config=configs/cfm_{fred,ddif,nsd}.py

Variants as configs/cfm_pixel.py (`digits,ipc=1`, `digits,filter=lfm`,
`digits,curriculum=False`, `cifar10,ipc=10`, `cifar100,ipc=50,arch=resnet18`). The recover
iterations per class-batch are `recover_iterations`; `iterations` is the loop's total (IPC x
recover_iterations); the recover optimizer is `opt.syn`.
"""
from jaxdd import config as C


def get_config(arg=None):
    return C.cfm_config("pixel", arg)
