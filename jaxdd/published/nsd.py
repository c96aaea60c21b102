"""NSD's published settings (Yang et al., ECCV 2024, Sec. 4.1 and Tables 1, 3, 5), the parts
the configs read (the paper's per-setting sizes and reported accuracies: jaxdd.param.nsd).

  TM_REPORTED        (dataset, ipc) with a TM + NSD result in the paper that jaxdd can load:
                     Table 1 (CIFAR-10 IPC 1 / 10 / 50, CIFAR-100 IPC 1 / 10) and Table 3
                     (ImageNet subsets, IPC 1); Tiny ImageNet IPC 1 has no jaxdd loader.
  MATCHING_REPORTED  DM + NSD and DC + NSD (Table 5): CIFAR-10 IPC 10 only.
  ITERATIONS         "10k iterations" (Sec. 4.1); MOMENTUM: SGD momentum 0.9 (Sec. 4.1).

Not published: N_T, N_K, t1, u1, the real-guided loss weight gamma, the learning rate (the
TM hyperparameters "follow previous work": MTT's rows, jaxdd.published.mtt).
"""
from __future__ import annotations

TM_REPORTED = (("cifar10", 1), ("cifar10", 10), ("cifar10", 50), ("cifar100", 1),
               ("cifar100", 10), ("imagenette", 1))
MATCHING_REPORTED = (("cifar10", 10),)
ITERATIONS = 10000
MOMENTUM = 0.9
