"""DDiF's published settings beyond images: video (MiniUCF), 3-D voxels (ModelNet-10,
ShapeNet) and audio (Mini Speech Commands) (Shin et al., ICLR 2025; aailab-kaist/DDiF @
b628e7b).

Transcribed from the authors' repository; tests/test_parity_modal_tables.py checks every
entry against tests/parity/fixtures/modal_tables.npz, which tests/parity/make_modal_tables.py
writes from the authors' own files (hyper_params.py imported, argparse defaults and script
values parsed, budgets from their DDiF classes). Keys are jaxdd's (dataset, ipc); the
authors' keys are ``AUTHORS_KEY[dataset]``.

Sources, per table:
  FIELDS_VOXEL  3D_Voxel/hyper_params.py ("ModelNet_32", "ShapeNet_32"; IPC 1): 3 sine
                layers, width 20, dim_in 3, dim_out 1, w0_initial 30, w0 40. DM and DC.
  FIELDS_VIDEO  Video/hyper_params.py ("miniUCF101"; IPC 1 and 5): 6 sine layers, width
                40, dim_in 3, dim_out 3, w0_initial 5, w0 5. DM only (Video/ has no DC).
  VOXEL_RUN     3D_Voxel/main_DM.py / main_DC.py argparse defaults and
                3D_Voxel/scripts/run_DDiF#DM.sh / run_DDiF#DC.sh:
                  DM  20000 iterations, batch_real 256, evaluation every 2000 iterations
                      (np.arange(0, Iteration+1, 2000), eval_mode 'S'), 1000 epochs;
                  DC  1000 DC iterations (get_loops: IPC 1 -> outer 1, inner 1), batch_real
                      256, lr_net 0.01, evaluation every 500; --epoch_eval_train defaults to
                      300 but main_DC.py:131-141 sets 1000 whenever args.dsa (below);
                  both: lr_nf 1e-4, batch_syn 0 (all fields), dipc 0 (fields per class from
                  the budget), 5 evaluation networks, SGD lr 0.01 (momentum 0.9, wd 5e-4,
                  lr x 0.1 at epoch E/2 + 1: utils.evaluate_synset), batch_train 256.
                Augmentation: --dsa_strategy defaults to "" ("No DSA strategy for 3D Voxel");
                ``args.dsa = dsa_strategy not in ['none', 'None']`` is then True, but
                utils.DiffAugment returns its input unchanged for "": no augmentation while
                distilling or evaluating (jaxdd: dsa_strategy 'none').
                Network: Conv3DNet from utils.get_network with get_default_convnet_setting()
                = width 128, depth 3 (the paper's App. B.2 says 64 filters; the code's 128
                is what ran). utils.epoch standardizes every batch ((x - mean) / std over
                the batch) before the network, in training and test: an evaluation detail
                recorded here (``batch_standardize``), not a config field.
  VIDEO_RUN     Video/distill_DDiF.py argparse defaults and Video/scripts/run_DDiF.sh (DM):
                5000 iterations, batch_real 64, evaluation every 500 (--eval_it), 500
                epochs (--epoch_eval_train), 3 networks (--num_eval), batch_train 256,
                evaluation lr = syn_lr = 0.01 (SGD momentum 0.9, wd 5e-4, lr x 0.1 at E/2 +
                1), eval_mode 'SS' (the script), lr_nf 1e-4, batch_syn 0, 16 frames. No
                augmentation: the DM loss embeds the clips as they are and
                evaluate_synset_nf passes mode='none'. Network: ConvNet3D (width 128, depth
                3, no norm, max pooling: utils.get_network).
                Fields per class: Video/DDiF.py uses ``num_per_class = dipc`` (no budget
                rule); the script sets dipc 1 (its IPC 1 run). IPC 5's dipc is in no file:
                5 (the paper's Fig. 4 compares methods at 1 and 5 decoded instances per
                class) -- marked in the row's source.
  AUDIO         the paper only (Table 9 (a), DC; the repository has no audio code): IPC 10
                and 20, synthetic batch 64 (per class), lr_nf 1e-5 / 1e-4; ConvNetD4 on
                64 x 64 log-magnitude spectrograms (App. B.1 / B.2), 8 classes. The field
                size (the paper's Table 8) and the DC run settings are not in the
                repository: jaxdd takes DC/hyper_params.py's CIFAR-10 IPC 10 field (2 sine
                layers, width 6: many fields per class, as a synthetic batch of 64 per class
                implies) and DC/main_DC.py's defaults, and says so in the row's source.

WARMUP (--epochs_init 5000, --lr_nf_init 5e-4) is the same in every main script
(jaxdd.published.ddif.WARMUP).

Composed tables (``DM``, ``DC``): (dataset, ipc) -> one dict with the field (``fields``),
its source, and the run settings; read with ``jaxdd.published.lookup`` (raises for a
(dataset, ipc) not listed).
"""
from __future__ import annotations

from jaxdd.published import lookup
from jaxdd.published.ddif import _fields

AUTHORS_KEY = {"modelnet10": "ModelNet_32", "shapenet": "ShapeNet_32", "miniucf": "miniUCF101"}
MODALITY = {"modelnet10": "voxel", "shapenet": "voxel", "miniucf": "video",
            "mini_speech_commands": "audio"}

FIELDS_VOXEL = {(d, 1): _fields(3, 20, 40, dim_in=3, dim_out=1, w0_initial=30)
                for d in ("modelnet10", "shapenet")}
FIELDS_VIDEO = {("miniucf", i): _fields(6, 40, 5, dim_in=3, dim_out=3, w0_initial=5)
                for i in (1, 5)}

# the authors' network settings (utils.get_network / get_default_convnet_setting)
VOXEL_NET = dict(model="conv3dnet", width=128, depth=3)
VIDEO_NET = dict(model="convnet3d", width=128, depth=3)

_EVAL = dict(eval_lr=0.01, num_eval=5, batch_train=256)
VOXEL_RUN = {
    "dm": dict(iterations=20000, lr_nf=1e-4, batch_syn=0, dipc=0, batch_real=256,
               eval_epochs=1000, eval_every=2000, dsa_strategy="none",
               batch_standardize=True, **_EVAL),
    "dc": dict(iterations=1000, lr_nf=1e-4, batch_syn=0, dipc=0, batch_real=256, lr_net=0.01,
               eval_epochs=1000, eval_every=500, dsa_strategy="none",
               batch_standardize=True, **_EVAL),
}
VIDEO_RUN = {
    "dm": dict(iterations=5000, lr_nf=1e-4, batch_syn=0, batch_real=64, eval_epochs=500,
               eval_every=500, eval_lr=0.01, num_eval=3, batch_train=256, frames=16,
               dsa_strategy="none", batch_standardize=False),
}
# fields per class (Video/DDiF.py: num_per_class = args.dipc)
VIDEO_DIPC = {1: 1, 5: 5}
VIDEO_DIPC_SOURCE = {1: "Video/scripts/run_DDiF.sh dipc=1",
                     5: "dipc not published: 5 (paper Fig. 4: 5 decoded instances per class)"}

AUDIO_SOURCE = "DDiF paper Table 9 (a), no code"
AUDIO = {("mini_speech_commands", 10): dict(batch_syn=64, lr_nf=1e-5),
         ("mini_speech_commands", 20): dict(batch_syn=64, lr_nf=1e-4)}
AUDIO_NET = dict(model="ConvNetD4", shape=(64, 64, 1), num_classes=8)
# not published (see the module docstring): DC/hyper_params.py's CIFAR-10 IPC 10 field with
# dim_out 1, and DC/main_DC.py's defaults (jaxdd.published.ddif.DC_RUN)
AUDIO_FIELD = _fields(2, 6, 10, dim_in=2, dim_out=1)


def _voxel_rows(objective: str) -> dict:
    o = objective.upper()
    out = {}
    for key, f in FIELDS_VOXEL.items():
        src = (f"aailab-kaist/DDiF 3D_Voxel/hyper_params.py[{AUTHORS_KEY[key[0]]!r}][1] + "
               f"main_{o}.py defaults + scripts/run_DDiF#{o}.sh")
        out[key] = dict(fields=f, **VOXEL_RUN[objective], **VOXEL_NET, source=src)
    return out


def _video_rows() -> dict:
    out = {}
    for (d, ipc), f in FIELDS_VIDEO.items():
        src = (f"aailab-kaist/DDiF Video/hyper_params.py['miniUCF101'][{ipc}] + "
               f"distill_DDiF.py defaults + scripts/run_DDiF.sh; {VIDEO_DIPC_SOURCE[ipc]}")
        out[(d, ipc)] = dict(fields=f, dipc=VIDEO_DIPC[ipc], **VIDEO_RUN["dm"], **VIDEO_NET,
                             source=src)
    return out


def _audio_rows() -> dict:
    from jaxdd.published.ddif import DC_RUN

    out = {}
    for (d, ipc), a in AUDIO.items():
        run = {k: DC_RUN[k] for k in ("iterations", "batch_real", "lr_net", "eval_epochs",
                                      "eval_every", "num_eval")}
        out[(d, ipc)] = dict(
            fields=AUDIO_FIELD, dipc=0, batch_syn=a["batch_syn"], lr_nf=a["lr_nf"],
            eval_lr=DC_RUN["lr_net"], batch_train=256, dsa_strategy="none",
            batch_standardize=False, model=AUDIO_NET["model"], **run,
            source=(f"{AUDIO_SOURCE} (IPC {ipc}: synthetic batch {a['batch_syn']} per class, "
                    f"lr_nf {a['lr_nf']:g}; ConvNetD4, 64x64 spectrograms: App. B); field and "
                    "run settings not published: DC/hyper_params.py CIFAR-10 IPC 10 field "
                    "(width 6, 2 sine layers) + DC/main_DC.py defaults, no augmentation"))
    return out


DM = {**_voxel_rows("dm"), **_video_rows()}
DC = {**_voxel_rows("dc"), **_audio_rows()}
TABLES = {"dm": DM, "dc": DC}


def row(objective: str, dataset: str, ipc: int) -> dict:
    """The published row of (dataset, ipc) for DM / DC (raises, listing the known rows)."""
    if objective not in TABLES:
        raise ValueError(f"DDiF publishes {sorted(TABLES)} settings for video / audio / voxels, "
                         f"not {objective!r}")
    return lookup(TABLES[objective], dataset, ipc,
                  f"DDiF ({objective.upper()}) video / audio / voxel table")
