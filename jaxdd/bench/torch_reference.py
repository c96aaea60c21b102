"""PyTorch peers of the authors' outer iterations (MTT, FreD, DDiF), written the way their
code does it, for side-by-side timing with jaxdd (``[bench]`` extra).

    pip install -e ".[bench]"        # torch (CPU wheel)
    python launch/torch_reference.py --num_images=10 --syn_steps=20 --repeats=3
    python -m jaxdd.bench.torch_reference --method=fred --dsa --ipc=1 --side=28 --channels=1

torch is imported inside the functions only (jaxdd never needs it to import).

What it times (the body of MTT's ``distill.py`` loop; FreD's ``main_TM_FreD.py`` and DDiF's
``main_TM.py`` run the same loop after decoding their set):

    images = decode()          # MTT: the pixels; FreD: inverse DCT of mask * coefficients
                               # (two nn.Linear maps); DDiF: syn_steps x batch_syn random
                               # fields evaluated one by one in a Python loop, stacked
    student_params = [flat theta_0 (requires_grad)]
    for step in range(syn_steps):
        x = images[next chunk of a fresh permutation, chunks popped from the end]
        x = DSA(x)             # mode 'S': one op group per call (make_dsa), when dsa=True
        ce = cross_entropy(net(x, flat_param=student_params[-1]), y)
        grad = torch.autograd.grad(ce, student_params[-1], create_graph=True)[0]
        student_params.append(student_params[-1] - syn_lr * grad)
    loss = ||theta_N - target||^2 / ||theta_0 - target||^2    (sum; MTT's / num_params cancels)
    loss.backward(); SGD(momentum 0.5) on images / coefficients (Adam on DDiF fields) and
    SGD on syn_lr

Network: MTT's ConvNetD3 (width 128, ``nn.GroupNorm(C, C, affine=True)`` = instance norm,
ReLU, AvgPool2d(2, 2), Linear) with the authors' first-conv padding 3 on one-channel input,
evaluated functionally from ONE flat parameter vector (``F.conv2d``, ``F.group_norm``,
``F.avg_pool2d``, ``F.linear``) like MTT's ReparamModule, NCHW, float32. Timing checked
against the authors' own code: a /tmp driver running MTT's ``networks.ConvNet`` +
``ReparamModule`` + ``utils.DiffAugment`` (unmodified except ``view`` -> ``reshape`` for
torch 2.x) at the issue-17 config (28x28x1, IPC 1, DSA, 10 steps, 2 threads), alternating
with this module's step in one process: ratio 1.00 (7.05 s vs 7.03 s medians, load 14).
DDiF's warm-up (each field fitted alone with Adam, SynSet/DDiF.py ``init``) is
:func:`ddif_warmup_bench`.

Threads: ``--threads`` (0 = torch's default, all cores). On a shared machine run it with
``OMP_WAIT_POLICY=PASSIVE`` (the benchmark does): with the default spin-waiting, 2 OpenMP
threads on 2 busy cores were measured 5-13x slower than 1 thread (barrier spinning while
the other thread is descheduled); passive waiting removes that pathology.

Peak memory: resident-set high-water mark (``/proc/self/status`` VmHWM) over the timed
calls minus the resident set before them (the HWM is reset through ``/proc/self/clear_refs``
where the kernel allows it), i.e. what the iteration itself allocates.

The ConvNet and the decoders are in ``jaxdd.bench.torch_nets``, the torch DSA in
``jaxdd.bench.torch_dsa``; this module builds and times the step.

Run as ``python -m jaxdd.bench.torch_reference`` it prints one JSON line; the benchmark
suite (jaxdd.bench.suite) runs it so in a subprocess (torch's and XLA's thread pools never
compete) and reads that line.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

from jaxdd.bench.torch_dsa import DSA_STRATEGY, make_dsa  # noqa: F401 -- DSA_STRATEGY re-exported
from jaxdd.bench.torch_nets import (  # noqa: F401 -- first_pad, flat_from_jax re-exported
    convnet_shapes, field_coords, first_pad, flat_from_jax, idct_matrix, make_convnet,
    make_siren, siren_budget)


def rss_bytes(field="VmRSS"):
    """Resident set (or its high-water mark with field='VmHWM') of this process, bytes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux >= 4.0); returns False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


METHODS = ("mtt", "fred", "ddif")


def method_sizes(method, ipc=1, side=32, channels=3, num_classes=10, fred_k=64,
                 ddif_width=None, ddif_layers=2):
    """Instances per class of the authors' defaults: pixel ipc; FreD ipc*H*W // k
    (``msz_per_channel``); DDiF ipc*C*H*W // budget_per_field."""
    if method == "mtt":
        return ipc
    if method == "fred":
        return int(ipc * side * side / fred_k)
    width = ddif_width or 6
    return int(ipc * channels * side * side / siren_budget(2, width, ddif_layers, channels))


def build(num_images=10, syn_steps=20, batch_syn=0, side=32, channels=3, num_classes=10,
          width=128, depth=3, seed=0, threads=None, method="mtt", dsa=False, ipc=None,
          fred_k=64, ddif_width=6, ddif_layers=2, anomaly=False, device="cpu",
          batch_syn_default=0):
    """Returns (step, info): ``step()`` runs one full outer iteration in place.

    method 'mtt': the synthetic set is ``num_images`` pixel images (or ``ipc`` per class).
    method 'fred': FreD's ``main_TM_FreD.py`` iteration: frequency coefficients (n, C, H, W)
      times a fixed 0/1 mask of ``fred_k`` positions per class, decoded by the inverse DCT as
      two ``nn.Linear`` maps (rows, then columns), every instance decoded each iteration;
      n = ipc * H * W // fred_k per class. ``anomaly=True`` turns on
      ``torch.autograd.set_detect_anomaly`` as their script does (off by default: it only
      adds checks).
    method 'ddif': DDiF's ``main_TM.py`` iteration: one SIREN per instance (``ddif_width``,
      ``ddif_layers``, C outputs), ``syn_steps * batch_syn`` random fields decoded one by
      one in a Python loop (their ``synset.get(indices)``) and stacked, Adam (lr 1e-5) on all
      fields; n = ipc * C * H * W // budget per class.
    batch_syn 0 = the whole decoded set per student step (the authors' default).
    device: 'cpu' | 'cuda' (tensors are drawn on the CPU generator and moved).
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if threads:
        torch.set_num_threads(int(threads))
    torch.autograd.set_detect_anomaly(bool(anomaly))
    g = torch.Generator().manual_seed(seed)
    shapes = convnet_shapes(channels, side, width, depth, num_classes)
    flat0 = []
    fan_in = 1
    for name, s in shapes:
        if name.startswith("norm"):
            flat0.append((torch.ones(s) if name.endswith(".w") else torch.zeros(s)).reshape(-1))
            continue
        if name.endswith(".w"):
            fan_in = math.prod(s[1:])          # Cin*3*3 for convs, in for the classifier
        bound = 1.0 / math.sqrt(fan_in)        # PyTorch default init (bias: same fan_in)
        flat0.append(((torch.rand(s, generator=g) * 2 - 1) * bound).reshape(-1))
    dev = torch.device(device)
    starting = torch.cat(flat0)
    target = (starting + 0.01 * torch.randn(starting.shape, generator=g)).to(dev)
    starting = starting.to(dev)
    net = make_convnet(shapes, depth)
    augment = make_dsa(generator=g, device=dev) if dsa else None

    if ipc:
        per_class = method_sizes(method, ipc, side, channels, num_classes, fred_k, ddif_width,
                                 ddif_layers)
        num_images = per_class * num_classes
    labels = (torch.arange(num_images) % num_classes).to(dev)
    syn_lr = torch.tensor(0.01, device=dev).requires_grad_(True)
    opt_lr = torch.optim.SGD([syn_lr], lr=1e-5, momentum=0.5)
    info = {"num_params": int(starting.numel()), "method": method, "dsa": bool(dsa),
            "num_instances": int(num_images)}

    if method == "mtt":
        images = torch.randn(num_images, channels, side, side, generator=g).to(
            dev).requires_grad_(True)
        opt_syn = torch.optim.SGD([images], lr=100.0, momentum=0.5)

        def decode():
            return images, labels
    elif method == "fred":
        freq = torch.randn(num_images, channels, side, side, generator=g).to(
            dev).requires_grad_(True)
        mask = torch.zeros(num_images, channels, side, side)
        per_class = num_images // num_classes
        for c in range(num_classes):
            pos = torch.randperm(side * side, generator=g)[:fred_k]
            mask[c * per_class:(c + 1) * per_class, :, pos // side, pos % side] = 1.0
        mask = mask.to(dev)
        inv = torch.nn.Linear(side, side, bias=False).to(dev)
        inv.weight.data = torch.tensor(idct_matrix(side)).t().contiguous().to(dev)
        inv.weight.requires_grad = False
        opt_syn = torch.optim.SGD([freq], lr=1000.0, momentum=0.5)
        info["budget_floats"] = int(num_images * channels * fred_k // per_class)

        def decode():
            x = inv(mask * freq)
            x = inv(x.transpose(-1, -2)).transpose(-1, -2)
            return x, labels
    else:
        fields = torch.nn.ModuleList(make_siren(2, ddif_width, ddif_layers, channels,
                                                generator=g) for _ in range(num_images)).to(dev)
        coords = field_coords(side, side).to(dev)
        opt_syn = torch.optim.Adam(fields.parameters(), lr=1e-5)
        info["params_per_field"] = siren_budget(2, ddif_width, ddif_layers, channels)
        n_dec = min(num_images, syn_steps * (batch_syn or num_images))

        def decode():
            idx = torch.randperm(num_images, generator=g)[:n_dec].to(dev)
            ims = [fields[int(i)](coords).reshape(side, side, channels).permute(2, 0, 1)
                   for i in idx]
            return torch.stack(ims), labels[idx]

    def step():
        syn_images, y_hat = decode()
        n = syn_images.shape[0]
        bs = n if not batch_syn else min(batch_syn, n)
        student = [starting.clone().requires_grad_(True)]
        chunks = []
        for _ in range(syn_steps):
            if not chunks:
                chunks = list(torch.split(torch.randperm(n, generator=g).to(dev), bs))
            idx = chunks.pop()
            x = syn_images[idx]
            if augment is not None:
                x = augment(x)
            out = net(x, student[-1])
            ce = F.cross_entropy(out, y_hat[idx])
            grad = torch.autograd.grad(ce, student[-1], create_graph=True)[0]
            student.append(student[-1] - syn_lr * grad)
        num = F.mse_loss(student[-1], target, reduction="sum")
        den = F.mse_loss(starting, target, reduction="sum")
        loss = num / den
        opt_syn.zero_grad()
        opt_lr.zero_grad()
        loss.backward()
        opt_syn.step()
        opt_lr.step()
        return float(loss.detach())

    del np
    return step, info


def ddif_warmup_bench(num_fields=4, steps=100, side=28, channels=1, width=6, num_layers=2,
                      lr=5e-4, threads=None, seed=0, device="cpu"):
    """DDiF's warm-up loop (SynSet/DDiF.py ``init``): each field fitted on its own, Adam,
    ``steps`` full-image MSE steps, one field after the other. Returns seconds per field
    per 100 steps (median over fields)."""
    import torch
    import torch.nn.functional as F

    if threads:
        torch.set_num_threads(int(threads))
    g = torch.Generator().manual_seed(seed)
    coords = field_coords(side, side).to(device)
    ts = []
    for _ in range(num_fields):
        f = make_siren(2, width, num_layers, channels, generator=g).to(device)
        target = torch.randn(side * side, channels, generator=g).to(device)
        opt = torch.optim.Adam(f.parameters(), lr=lr)
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad()
            loss = F.mse_loss(f(coords), target)
            loss.backward()
            opt.step()
        float(loss)  # waits for the device
        ts.append(time.perf_counter() - t0)
    return {"impl": "pytorch", "workload": "ddif_warmup_reference", "torch": torch.__version__,
            "threads": torch.get_num_threads(), "fields": num_fields, "steps": steps,
            "seconds_median": statistics.median(ts),
            "seconds_per_field_per_100_steps": statistics.median(ts) * 100.0 / steps,
            "seconds_all": ts}


def tm_loss_and_grads(flat_start, flat_target, images_nhwc, labels, syn_lr, syn_steps,
                      num_classes, width, depth, dtype="float64"):
    """The MTT loss of a full-batch unroll (every image every step) and its gradients.

    Same computation as ``step()`` in `build` without the minibatch permutation (with
    batch_syn = all images the order inside the batch does not change the mean loss).
    Returns (loss, d loss / d images (NHWC numpy), d loss / d syn_lr).
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    dt = getattr(torch, dtype)
    x = torch.tensor(np.asarray(images_nhwc).transpose(0, 3, 1, 2), dtype=dt,
                     requires_grad=True)
    n, ch, side, _ = x.shape
    y = torch.tensor(np.asarray(labels), dtype=torch.long)
    start = torch.tensor(np.asarray(flat_start), dtype=dt)
    target = torch.tensor(np.asarray(flat_target), dtype=dt)
    lr = torch.tensor(float(syn_lr), dtype=dt, requires_grad=True)
    net = make_convnet(convnet_shapes(ch, side, width, depth, num_classes), depth)
    student = [start.clone().requires_grad_(True)]
    for _ in range(syn_steps):
        ce = F.cross_entropy(net(x, student[-1]), y)
        grad = torch.autograd.grad(ce, student[-1], create_graph=True)[0]
        student.append(student[-1] - lr * grad)
    loss = F.mse_loss(student[-1], target, reduction="sum") / F.mse_loss(
        start, target, reduction="sum")
    gx, glr = torch.autograd.grad(loss, (x, lr))
    return (float(loss.detach()), gx.detach().numpy().transpose(0, 2, 3, 1), float(glr))


def bench(num_images=10, syn_steps=20, batch_syn=0, repeats=3, warmup=1, threads=None,
          max_seconds=None, **kw):
    """Median seconds of one outer iteration after `warmup` untimed ones; dict.

    ``kw`` goes to :func:`build` (method, dsa, ipc, side, channels, ...).
    max_seconds: stop repeating once the timed calls have taken this long (>= 1 call)."""
    import torch

    step, info = build(num_images, syn_steps, batch_syn, threads=threads, **kw)
    cuda = str(kw.get("device", "cpu")).startswith("cuda")
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss0 = rss_bytes()
    can_reset = reset_peak_rss()
    ts, cpus = [], []
    t_all = time.perf_counter()
    for i in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if max_seconds and time.perf_counter() - t_all > max_seconds and i + 1 < repeats:
            break  # time budget spent: the median of the calls made
    hwm = rss_bytes("VmHWM")
    peak = (hwm - rss0) if (can_reset and hwm is not None and rss0 is not None) else None
    if peak is not None and peak < 0:  # memory freed meanwhile / lagging kernel counters
        peak = None
    info = {**info, "num_images": info.get("num_instances", num_images),
            "rss_hwm_bytes": hwm, "device": str(kw.get("device", "cpu"))}
    if cuda:
        info["cuda_peak_bytes"] = int(torch.cuda.max_memory_allocated())
        info["gpu"] = torch.cuda.get_device_name()
    return {"impl": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "syn_steps": syn_steps, "batch_syn": batch_syn,
            "seconds_median": statistics.median(ts), "seconds_all": ts,
            "cpu_seconds_median": statistics.median(cpus),
            "peak_bytes": peak, "peak_kind": "rss_hwm_delta", **info}


# the command line (python -m jaxdd.bench.torch_reference, launch/torch_reference.py):
# (flag, default, help); the type follows the default; 0 means "off" / "default"
_FLAGS = (
    ("num_images", 10, "synthetic images"), ("syn_steps", 20, "student steps unrolled"),
    ("batch_syn", 0, "images per student step (0: all)"), ("side", 32, "image side"),
    ("channels", 3, "image channels"), ("num_classes", 10, "classes"),
    ("width", 128, "ConvNet width"), ("depth", 3, "ConvNet depth"),
    ("repeats", 3, "timed calls"), ("warmup", 1, "untimed calls first"),
    ("threads", 0, "torch threads (0: torch's default)"),
    ("max_seconds", 0.0, "stop repeating after this long (0: never)"),
    ("method", "mtt", "the authors' step: " + " | ".join(METHODS)),
    ("dsa", 0, "1 (or the bare flag): DSA on (the authors' TM default)"),
    ("ipc", 0, ">0: set size from the method's budget (else num_images)"),
    ("fred_k", 64, "FreD coefficients per channel"), ("ddif_width", 6, "DDiF field width"),
    ("ddif_layers", 2, "DDiF sine layers"), ("anomaly", 0, "1: torch anomaly detection"),
    ("device", "cpu", "cpu | cuda"),
    ("ddif_warmup", 0, ">0: time DDiF's per-field warm-up loop on this many fields instead"),
    ("warmup_steps", 100, "Adam steps of that warm-up"),
)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default, help_ in _FLAGS:
        extra = {"nargs": "?", "const": 1} if name == "dsa" else {}
        extra.update({"choices": METHODS} if name == "method" else {})
        ap.add_argument(f"--{name}", type=type(default), default=default, help=help_, **extra)
    a = ap.parse_args(argv)
    if a.ddif_warmup:
        r = ddif_warmup_bench(a.ddif_warmup, a.warmup_steps, a.side, a.channels, a.ddif_width,
                              a.ddif_layers, threads=a.threads or None, device=a.device)
        r["rss_hwm_bytes"] = rss_bytes("VmHWM")
        print("TORCH_RESULT " + json.dumps(r))
        sys.stdout.flush()
        return
    r = bench(a.num_images, a.syn_steps, a.batch_syn, a.repeats, a.warmup, a.threads or None,
              max_seconds=a.max_seconds or None, side=a.side, channels=a.channels,
              num_classes=a.num_classes, width=a.width, depth=a.depth, method=a.method,
              dsa=bool(a.dsa), ipc=a.ipc or None,
              fred_k=a.fred_k, ddif_width=a.ddif_width, ddif_layers=a.ddif_layers,
              anomaly=bool(a.anomaly), device=a.device)
    print("TORCH_RESULT " + json.dumps(r))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
