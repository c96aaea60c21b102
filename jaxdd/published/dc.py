"""DC's published recipe (gradient matching: Zhao, Mopuri & Bilen, ICLR 2021; with DSA, Zhao
& Bilen, ICML 2021), transcribed: the DatasetCondensation main.py argparse defaults and
utils.get_loops, as FreD's and DDiF's DC/ code carries them (sdh0818/FreD, aailab-kaist/DDiF
DC/utils.py at the commits of jaxdd.published.fred / .ddif; tests/test_parity_dm_dc.py and
tests/test_parity_fred_tables.py check LOOPS against the authors' get_loops).

  LOOPS      IPC -> (outer_loop, inner_loop): synthetic updates per network initialization
             and network epochs between them. IPC 2 / 11 / 51 are FreD's budget settings (its
             DC script runs --ipc 2) with the IPC 1 / 10 / 50 loops.
  RECIPE     main.py defaults: 1000 DC iterations (each of outer_loop synthetic updates),
             batch_real 256 real images per class, the matched network trained with SGD
             lr_net 0.01 (no momentum in the current code) on minibatches of batch_train 256,
             the pixels with SGD(lr_img 0.1, momentum 0.5), evaluation lr 0.01.
  REPORTED   the (dataset, ipc) settings whose results the DC / DSA papers report with this
             recipe and jaxdd encodes (configs/dc_pixel.py VARIANTS).
"""
from __future__ import annotations

LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10),
         2: (1, 1), 11: (10, 50), 51: (50, 10)}

RECIPE = dict(iterations=1000, batch_real=256, lr_net=0.01, net_momentum=0.0, batch_train=256,
              lr_img=0.1, momentum_img=0.5, eval_lr=0.01)

REPORTED = (("cifar10", 1), ("cifar10", 10), ("cifar10", 50), ("cifar100", 1),
            ("cifar100", 10))

SOURCE = ("DC / DSA papers / DatasetCondensation main.py defaults "
          "(not checked by a parity fixture)")


def loops(ipc: int) -> tuple[int, int]:
    """DC's (outer_loop, inner_loop) for an IPC; ValueError for IPCs DC does not define."""
    if int(ipc) not in LOOPS:
        raise ValueError(f"DC defines outer/inner loops for IPC {sorted(LOOPS)}, not "
                         f"{ipc}; set cfg.objective.outer_loop / inner_loop explicitly")
    return LOOPS[int(ipc)]
