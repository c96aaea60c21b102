"""Expert buffers (trajectories for trajectory matching): `python launch/buffer.py`.

Variants (config string after ':'; extra `field=value` pairs override, dotted for nested
fields, e.g. `configs/buffer.py:cifar10,num_experts=10,model.name=ConvNetD3W32`; absl's
`--config.<field>=...` flags work too):

  digits (default)  embedded sklearn digits at 16x16x1, ConvNetD2W32, 8 experts x 7
                    epochs (as far as the digits TM setting reads them: max_start_epoch 5 +
                    expert_epochs 2), SGD lr 0.01, batch 256, DSA on (the MTT recipe; the
                    same buffer the digits tm_* configs use), one expert at a time (faster
                    and lighter than a vmapped group on CPU). Offline; a CPU demo:
                      python launch/buffer.py --config=configs/buffer.py:digits
                    -> buffers/digits-r16-nozca-ConvNetD2W32. Time: docs/performance.md
                    "The main command".
  cifar10           the MTT buffer: ConvNetD3, 100 experts x 50 epochs, SGD lr 0.01, batch
                    256, ZCA (eps 0.1), DSA on, native 32x32 (resolution None, as in the
                    tm_* configs; IPC 50 TM uses a no-ZCA buffer: add ,dataset.zca=False).
                    Experts reach ~77-79 % (MTT reports this).
                      python launch/buffer.py --config=configs/buffer.py:cifar10
                    Needs tfds cifar10 prepared (see docs/operations.md). GPU recommended (hours on CPU).
  cifar100          same recipe on CIFAR-100 (ZCA), ConvNetD3.
  imagenette        the papers' ImageNette (ImageNet-1k subset via tfds imagenet2012, squashed to
                    128x128), ConvNetD5, no ZCA, 100 experts x 50 epochs.

Storage: one Orbax checkpoint per expert, `<buffer_dir>/expert_<i:05d>` (1.28 MB raw per
ConvNetD3 CIFAR snapshot; 51 snapshots = 61 MB on disk with Orbax's zstd, measured by
launch/bench_experts.py; the PyTorch buffer takes 65 MB). Re-running the command resumes:
complete experts are skipped. Only snapshots 0..record_epochs are stored (None = all);
TM reads epochs 0..max_start_epoch + expert_epochs.
"""
from jaxdd import config as C


def get_config(arg=None):
    """`arg` = '<variant>[,field=value,...]' (default variant 'digits'); the recipe is
    jaxdd.config.buffer_config (one definition, shared with the library's build hints)."""
    return C.buffer_config(arg)
