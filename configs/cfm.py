"""CFM (UniDD curriculum frequency matching): squeeze -> statistics -> recover -> relabel.

Embedded default (offline, 2 CPU cores, the whole pipeline in a few minutes): digits at
16x16, teacher = student = ConvNetD2W32BN (BatchNorm, like the paper's ConvNet-128 teacher),
IPC 10, HFM filter with the cosine beta curriculum:

    python launch/cfm.py --config=configs/cfm.py --mode=all --workdir=/tmp/cfm

Variants (the config string: dataset, then key=value overrides):

    configs/cfm.py:digits,ipc=1                      embedded, IPC 1
    configs/cfm.py:digits,filter=lfm                 low-pass (LFM) filter
    configs/cfm.py:digits,curriculum=False           fixed beta (plain high-pass)
    configs/cfm.py:cifar10,ipc=10                    ConvNetD3BN (ConvNet-128, BN), paper 52.1
    configs/cfm.py:cifar10,ipc=50                    paper 64.0
    configs/cfm.py:cifar100,ipc=10                   paper 58.3
    configs/cfm.py:cifar100,ipc=50                   paper 67.1
    configs/cfm.py:cifar10,arch=resnet18,ipc=10      ResNet-18 (BN), paper 57.0 / IPC 50 82.3
    configs/cfm.py:cifar100,arch=resnet18,ipc=50     paper 64.6 (IPC 10) / 71.4 (IPC 50)

Shortcuts: ipc, arch (convnet | resnet18), filter (hfm | lfm), curriculum, beta, signal
(class | mean), iterations (recover), epochs (evaluation); any other field with its dotted
path (`recover.lr=0.1`, `squeeze.epochs=5`) or absl's `--config.recover.lr=0.1`.

Settings (paper appendix Tables 2-4 and the public code bdy9527/UniDD):
  squeeze: SGD 0.1, momentum 0.9, wd 5e-4, cosine, batch 128, RandomCrop(pad 4) + flip,
    200 epochs CIFAR-10 / 100 CIFAR-100. The CIFAR ConvNet teacher uses BatchNorm
    (the public code's ConvNetW128D3 has net_norm='batch'); ResNet-18 is the CIFAR variant
    (3x3 stem, no max-pool) with BN.
  statistics: conv-layer inputs, teacher in eval mode, Psi = average of per-batch biased
    covariances (batch 128, dataset order; hook.py), Phi / mean over the whole set.
  recover: beta 0.1, 1000 iterations per batch, Adam(0.25, betas (0.5, 0.9)), cosine,
    RandomResizedCrop + flip + roll up to 4 px, eta 0.1, EMU on, curriculum on, signal
    'mean' (the authors' commands), batch b initialized from the b-th real image per class.
  relabel: AdamW(1e-3, wd 1e-2), T = 20, CutMix(1.0), RandomResizedCrop + flip, 1000 epochs;
    batch 10/50/100 (CIFAR-10 IPC 1/10/50), 20/100/200 (CIFAR-100); student = teacher arch.
Expected times: digits default ~3-5 min on 2 CPU cores; CIFAR runs need a GPU (teacher
200 epochs, 10 x IPC recover batches of 1000 iterations, 1000 evaluation epochs).
Accuracies use the soft-label protocol: NOT comparable with the TM tables.
"""
import ml_collections

from jaxdd import config as C

_EVAL_BATCH = {("cifar10", 1): 10, ("cifar10", 10): 50, ("cifar10", 50): 100,
               ("cifar100", 1): 20, ("cifar100", 10): 100, ("cifar100", 50): 200}

_SHORT = {"filter": "recover.filter", "curriculum": "recover.curriculum",
          "beta": "recover.beta", "signal": "recover.signal",
          "iterations": "recover.iterations", "epochs": "eval.epochs"}


def get_config(arg=None):
    dataset, overrides = C.parse_arg(arg)
    if dataset not in ("digits", "cifar10", "cifar100"):
        raise ValueError(f"configs/cfm.py has variants digits, cifar10, cifar100; got "
                         f"{dataset!r}")
    ipc = int(overrides.pop("ipc", 10))
    arch = str(overrides.pop("arch", "convnet")).lower()
    info = C.DATASETS[dataset]

    cfg = ml_collections.ConfigDict()
    cfg.seed = 0  # recover (initial real images, augmentation) and evaluation
    cfg.ipc = ipc

    cfg.dataset = ml_collections.ConfigDict()
    cfg.dataset.name = dataset
    cfg.dataset.resolution = info["resolution"]
    cfg.dataset.zca = False
    cfg.dataset.data_dir = None

    cfg.teacher = ml_collections.ConfigDict()
    if dataset == "digits":
        cfg.teacher.name = "ConvNetD2W32BN"
    elif arch == "convnet":
        cfg.teacher.name = "ConvNetD3BN"
    elif arch == "resnet18":
        cfg.teacher.name = "ResNet18BN"
    else:
        raise ValueError(f"arch must be convnet or resnet18, got {arch!r}")
    cfg.teacher.overrides = ml_collections.ConfigDict()

    cfg.squeeze = ml_collections.ConfigDict()
    cfg.squeeze.dir = ""  # "" -> the workdir; set to share one teacher between runs
    cfg.squeeze.seed = 0  # the teacher's seed (cfg.seed drives recover and evaluation)
    cfg.squeeze.epochs = {"digits": 30, "cifar10": 200, "cifar100": 100}[dataset]
    cfg.squeeze.batch_size = 128
    cfg.squeeze.lr = 0.1
    cfg.squeeze.momentum = 0.9
    cfg.squeeze.weight_decay = 5e-4
    cfg.squeeze.crop_pad = 2 if dataset == "digits" else 4
    cfg.squeeze.flip = dataset != "digits"  # flipped digits are other digits
    cfg.squeeze.checkpoint_every = 10

    cfg.statistics = ml_collections.ConfigDict()
    # the authors' hook.py averages per-batch covariances over batches of 128 in dataset
    # order ('batch'); 'exact' = the covariance of all N*H*W positions (batch-independent)
    cfg.statistics.psi = "batch"
    cfg.statistics.batch_size = 128
    cfg.statistics.exclude = ("shortcut",)  # ResNet 1x1 shortcut convs (code: 'downsample')

    cfg.recover = ml_collections.ConfigDict()
    cfg.recover.filter = "hfm"  # 'hfm': (Psi + beta I)^-1; 'lfm': Psi
    cfg.recover.beta = 0.1
    cfg.recover.curriculum = True  # beta_b = beta (1 + cos(pi b / IPC)) / 2
    cfg.recover.signal = "mean"  # the authors' commands (--signal mean); paper Eq. 18: 'class'
    cfg.recover.ema = True  # EMU (paper; synthesis_small.py's command has --ema)
    cfg.recover.init = "first"  # batch b starts from the b-th image of each class (authors)
    cfg.recover.eta = 0.1
    cfg.recover.iterations = 200 if dataset == "digits" else 1000
    cfg.recover.lr = 0.25
    cfg.recover.b1 = 0.5
    cfg.recover.b2 = 0.9
    cfg.recover.rrc_scale = (0.08, 1.0)
    cfg.recover.rrc_ratio = (3.0 / 4.0, 4.0 / 3.0)
    cfg.recover.flip = dataset != "digits"
    cfg.recover.jitter = 2 if dataset == "digits" else 4  # 4 px at 32x32
    cfg.recover.per_sample_aug = False  # public code: one crop/flip/roll per batch
    cfg.recover.chunk = 50

    cfg.eval = ml_collections.ConfigDict()
    cfg.eval.model = ""  # "" -> the teacher architecture (public code)
    cfg.eval.overrides = ml_collections.ConfigDict()
    cfg.eval.num_nets = 5
    cfg.eval.epochs = 300 if dataset == "digits" else 1000
    # digits (10 classes) uses the CIFAR-10 batch sizes
    cfg.eval.batch_size = _EVAL_BATCH.get(
        ("cifar10" if dataset == "digits" else dataset, ipc), 100)
    cfg.eval.lr = 1e-3
    cfg.eval.weight_decay = 1e-2
    cfg.eval.temperature = 20.0
    cfg.eval.cutmix_alpha = 1.0
    cfg.eval.rrc_scale = (0.08, 1.0)
    cfg.eval.flip = dataset != "digits"
    cfg.eval.schedule = "half_cosine"  # public code; 'cosine' decays to 0
    cfg.eval.t2_scale = False
    cfg.eval.random_real_baseline = False

    cfg.diagnostic = ml_collections.ConfigDict()
    cfg.diagnostic.enabled = True
    cfg.diagnostic.bands = 8

    for k, v in overrides.items():
        path = _SHORT.get(k, k)
        node, parts = cfg, path.split(".")
        for p in parts[:-1]:
            node = node[p]
        if parts[-1] not in node:
            raise ValueError(f"configs/cfm.py has no field {k!r}")
        node[parts[-1]] = v
    return cfg
