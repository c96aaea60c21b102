"""Settings for a (dataset, ipc) the authors never published: jaxdd's derivation rules.

Every builder keeps a published row exactly where one exists. Otherwise:

1. `nearest`: the published row of the SAME image shape (H, W, C) -- the same dataset first,
   then the nearest IPC (log scale), then the nearest class count -- supplies the
   hyperparameters and the parameterization's fields (at the same shape a field that fits
   one row's budget is sized for that resolution; its count follows the budget: FreD and
   DDiF compute the instances per class from IPC x H x W x C). ZCA is kept only when the
   row is the same dataset's.
2. No row of that shape (MNIST-sized, an npz file of its own shape): the digits default
   (the embedded setting every config is tuned on), its shape-bound fields re-derived for
   the storage budget IPC x H x W x C of the new shape as the digits ones were:
     FreD k      = H W / 4 coefficients per channel: the digits k = 64 of 16 x 16 (4
                   instances per image of budget; the CIFAR ratio 1/16 lost too much on
                   digits), with lr_freq = the digits-tuned lr on the orthonormal DCT x 4 H W
                   (its equivalent on the authors' unnormalized DCT; `FRED_ORTHO_LR`);
     DDiF field  = the digits field (width 6, 2 sine layers = the paper's CIFAR-10 IPC 1
                   field), narrowed only if not one field fits the budget; fields per class
                   = floor(IPC x H x W x C / params per field);
     NSD sizes   = the NSD size rule (jaxdd.param.nsd.choose_sizes: the paper's spatial
                   sizes, shrunk until they fit).
   A method's dataset-agnostic recipe (DM / DC / NSD iterations, DDiF's run settings) is
   kept: it is what the authors ran on every dataset.
3. DC's outer / inner loops for an IPC get_loops does not define: the nearest defined IPC's.

cfg.source says "derived, not published: <how>" (`jaxdd.config.base.derived`).
"""
from __future__ import annotations

import math

from jaxdd.config.datasets import info, shape_text

# FreD on digits: the lr each objective was tuned with on the ORTHONORMAL DCT; on the
# authors' unnormalized DCT (every config's param.norm = 'none') the same steps take
# lr x 4 H W (jaxdd.param.fred.equivalent_ortho_lr).
FRED_ORTHO_LR = {"tm": 1000.0, "dm": 100.0, "dc": 1.0}
DDIF_WIDTH, DDIF_LAYERS = 6, 2  # the digits field


def nearest(keys, dataset: str, ipc: int):
    """The (dataset, ipc) of `keys` (a published table's) with `dataset`'s image shape:
    the same dataset first, then the nearest IPC (log scale), then the nearest class count
    (log scale); None when no row has that shape."""
    me = info(dataset)
    rows = [k for k in keys if _shape_or_none(k[0]) == tuple(me["shape"])]
    if not rows:
        return None

    def rank(k):
        d, i = k
        classes = info(d)["num_classes"]
        return (d != dataset, abs(math.log(i / ipc)),
                abs(math.log(classes / me["num_classes"])) if me["num_classes"] > 0 else 0,
                i, d)

    return min(rows, key=rank)


def _shape_or_none(dataset):
    try:
        return tuple(info(dataset)["shape"])
    except ValueError:
        return None


def row_text(key, source: str = "") -> str:
    d, i = key
    return f"{d} IPC {i}" + (f" ({source})" if source else "")


def shape_of(dataset: str) -> str:
    """'28x28x1': the image shape of a dataset (for the labels)."""
    return shape_text(info(dataset)["shape"])


def _grid(shape) -> tuple:
    return tuple(int(s) for s in shape[:-1])


def fred_k(shape) -> int:
    """Digits rule: H W / 4 coefficients per channel (the digits k = 64 of 16 x 16); a 3-D
    grid (D, H, W, C or T, H, W, C): D H W / 4."""
    return max(1, math.prod(_grid(shape)) // 4)


def fred_lr(objective: str, shape) -> float:
    """The digits-tuned orthonormal lr of `objective` x 4 H W (unnormalized DCT); on a grid
    of d axes x 2^d x the grid size (the unnormalized DCT's per-axis scale 2 N, squared)."""
    g = _grid(shape)
    return FRED_ORTHO_LR[objective] * 2 ** len(g) * math.prod(g)


def fred_digits_rule(shape, objective: str) -> str:
    if len(_grid(shape)) != 2:
        return (f"FreD k = (grid size)/4 = {fred_k(shape)}, lr_freq = "
                f"{FRED_ORTHO_LR[objective]:g} (digits-tuned, orthonormal DCT) x "
                f"2^{len(_grid(shape))} x grid size = {fred_lr(objective, shape):g}")
    return (f"FreD k = HW/4 = {fred_k(shape)}, lr_freq = {FRED_ORTHO_LR[objective]:g} "
            f"(digits-tuned, orthonormal DCT) x 4HW = {fred_lr(objective, shape):g}")


def ddif_fit(param_cfg, ipc: int, shape) -> None:
    """Narrow param_cfg.width (down to 1) until one DDiF field fits IPC x H x W x C floats."""
    from jaxdd.param import ddif  # the one definition of a field's parameter count

    budget = int(ipc) * math.prod(int(s) for s in shape)
    while param_cfg.width > 1 and ddif.params_per_field(param_cfg, shape) > budget:
        param_cfg.width -= 1


def ddif_digits_rule(param_cfg, ipc: int, shape) -> str:
    """The digits field (width 6, 2 sine layers), narrowed if none fits; -> its label."""
    from jaxdd.param import ddif

    param_cfg.width, param_cfg.num_layers = DDIF_WIDTH, DDIF_LAYERS
    ddif_fit(param_cfg, ipc, shape)
    b = ddif.params_per_field(param_cfg, shape)
    n = ddif.fields_per_class(ipc, shape, b)
    return (f"DDiF field width {param_cfg.width}, {param_cfg.num_layers} sine layers "
            f"({b} floats; {n} fields per class)")


def dc_loops(ipc: int, defined: dict) -> tuple[int, int] | None:
    """None where DC defines loops for `ipc`; else the nearest defined IPC's (log scale)."""
    if int(ipc) in defined:
        return None
    best = min(defined, key=lambda i: (abs(math.log(i / int(ipc))), i))
    return defined[best]
