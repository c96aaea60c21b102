"""GPU benchmark config (issue 17): the whole suite on one accelerator in < 8 minutes.

    bash launch/gpu_bench.sh                 # on a GPU machine -> bench_results/bench_gpu.json
    bash launch/gpu_bench.sh --smoke         # the same path on tiny shapes (CPU, seconds)
    python launch/benchmark.py --config=configs/bench_gpu.py        # what the script runs
    python launch/benchmark.py --config=configs/bench_gpu.py:smoke

All data is random (no dataset is read). Rows:
  * TM at CIFAR-10 shapes (ConvNetD3, 32x32x3), pixel, the published MTT settings: IPC 1 /
    10 / 50 with syn_steps 50 / 30 / 30 and the whole synthetic set per student step
    (batch_syn 0 in the authors' scripts: 10 / 100 / 500 images), remat on and off; DSA on;
    then IPC 10 / 50 with remat in the opt-in bfloat16 compute mode
    (model.overrides.compute_dtype='bfloat16': bf16 operands, f32 accumulation; rows
    named tm_pixel_ipc<N>_bf16, after the f32 rows so a short budget skips them first).
  * DDiF ImageNette-128 IPC 1 (ConvNetD5 at 128 px, fields 3 x 20 with w0 40, syn_steps 20,
    batch_syn 102, decoding syn_steps x batch_syn random fields, all 510 here).
  * the PyTorch peer of the IPC 1 row (jaxdd.bench.torch_reference on the same GPU,
    ``--device cuda``) and the authors comparison (MTT / FreD / DDiF / DDiF warm-up at the
    MNIST-like issue config) with the PyTorch side on the GPU.
  * expert training: one epoch, 10 experts together (vmap) vs one at a time.
  * evaluation: K = 5 networks together vs one at a time (IPC 1 / 10 / 50 set sizes).
  * DDiF warm-up (all fields at once vs one at a time) and decode; FreD masks.
"""
import ml_collections

from jaxdd.bench import suite


def _tm(param, ipc, steps, remat, augment="dsa", **kw):
    return suite.tm_spec(param, ipc, steps, remat, augment=augment, **kw)


def get_config(arg=None):
    # shared fields: jaxdd.bench.suite.base_config; larger ceilings and sections on a GPU
    cfg = suite.base_config(
        "bench_results/bench_gpu.json",
        ["ceilings", "tm", "peer", "authors", "experts", "eval", "ddif", "fred"],
        ceiling_matmul=4096, ceiling_conv=(256, 32, 128), ceilings_at_end=False,
        tm_max_wall_s=200)  # rows not started by then are recorded as skipped

    cfg.peer = ml_collections.ConfigDict(dict(
        ipc=1, num_images=10, syn_steps=50, width=128, depth=3, repeats=3, warmup=1,
        jax_warmup=1, torch_threads=[0], remat=[True], max_seconds=30, timeout_s=180,
        torch_device="cuda"))

    cfg.tm_rows = []
    for ipc, steps in ((1, 50), (10, 30), (50, 30)):
        for remat in (True, False):
            cfg.tm_rows.append(_tm("pixel", ipc, steps, remat, batch_syn=10 * ipc,
                                   repeats=3, warmup=1))
    cfg.tm_rows.append(_tm("ddif", 1, 20, True, batch_syn=102, side=128, model="ConvNetD5",
                           param_cfg={"width": 20, "num_layers": 3, "w0": 40.0,
                                      "warmup_steps": 0},
                           repeats=2, warmup=1, name="ddif_imagenette128_ipc1"))
    for ipc, steps in ((10, 30), (50, 30)):
        cfg.tm_rows.append(_tm("pixel", ipc, steps, True, batch_syn=10 * ipc, repeats=3,
                               warmup=1, compute_dtype="bfloat16",
                               name=f"tm_pixel_ipc{ipc}_bf16"))

    cfg.authors = ml_collections.ConfigDict(dict(
        side=28, channels=1, num_classes=10, ipc=1, model="ConvNetD3", dsa=True, remat=True,
        methods=["mtt", "fred", "ddif", "ddif_warmup"],
        syn_steps={"mtt": 20, "fred": 20, "ddif": 20},
        repeats={"mtt": 3, "fred": 2, "ddif": 2, "ddif_warmup": 1},
        rounds=1, warmup=1, torch_threads=0, fred_k=64, ddif_width=6, ddif_layers=2,
        warmup_steps=500, warmup_fields_torch=3, timeout_s=240, compile_cache=None,
        torch_device="cuda"))

    cfg.experts.update(num_examples=5120, num_experts=10, batch_size=256)
    cfg.eval.update(num_train=[10, 100, 500], epochs=20)
    cfg.ddif.update(warmup_fields=110, warmup_steps=200)

    if arg == "smoke":
        # the same path on tiny shapes: runs on a CPU in about a minute (no GPU, no torch
        # needed: the PyTorch rows are skipped without torch)
        cfg.out = "bench_results/bench_gpu_smoke.json"
        suite.tiny_shapes(cfg)
        cfg.param_overrides = ml_collections.ConfigDict({
            "ddif": {"warmup_steps": 0, "width": 2, "num_layers": 1}})
        cfg.peer.update(jax_warmup=0, torch_device="cpu")
        cfg.tm_rows = [_tm("pixel", 1, 2, False, batch_syn=2, repeats=1, warmup=0,
                           augment="none"),
                       _tm("ddif", 1, 2, True, batch_syn=2, side=16, model="ConvNetD2W4",
                           augment="none",
                           param_cfg={"width": 2, "num_layers": 1, "w0": 40.0,
                                      "warmup_steps": 0},
                           repeats=1, warmup=0, name="ddif_imagenette128_ipc1"),
                       _tm("pixel", 1, 2, True, batch_syn=2, repeats=1, warmup=0,
                           augment="none", compute_dtype="bfloat16",
                           name="tm_pixel_ipc1_bf16")]
        cfg.authors.update(methods=["mtt"], repeats={"mtt": 1}, timeout_s=120,
                           torch_device="cpu")
    elif arg:
        raise ValueError(f"unknown bench_gpu variant {arg!r} (use '' or 'smoke')")
    return cfg
