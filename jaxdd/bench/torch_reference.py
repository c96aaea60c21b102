"""PyTorch peer of one TM (MTT) outer iteration, written the way the authors' code does it.

    pip install -e ".[bench]"        # torch (CPU wheel)
    python launch/torch_reference.py --num_images=10 --syn_steps=20 --repeats=3

torch is imported inside the functions only (jaxdd never needs it to import).

What it times (the body of MTT's ``distill.py`` loop, ``ReparamModule`` + flat parameters):

    student_params = [flat theta_0 (requires_grad)]
    for step in range(syn_steps):
        x = syn_images[next chunk of a fresh permutation]      # batch_syn (default: all)
        ce = cross_entropy(net(x, flat_param=student_params[-1]), y)
        grad = torch.autograd.grad(ce, student_params[-1], create_graph=True)[0]
        student_params.append(student_params[-1] - syn_lr * grad)
    loss = ||theta_N - target||^2 / ||theta_0 - target||^2    (sum; MTT's / num_params cancels)
    loss.backward(); SGD(momentum 0.5) steps on the images and on syn_lr

Network: MTT's ConvNetD3 (width 128, ``nn.GroupNorm(C, C, affine=True)`` = instance norm,
ReLU, AvgPool2d(2, 2), Linear), evaluated functionally from ONE flat parameter vector
(``F.conv2d``, ``F.group_norm``, ``F.avg_pool2d``, ``F.linear``) like MTT's ReparamModule,
NCHW, float32, padding 1. Augmentation: none (DSA off) on both sides of the comparison; the
JAX peer row of the benchmark uses ``augment=None`` too, so both sides do the same work.
Initialization is irrelevant for speed (uniform PyTorch-style bounds).

Threads: ``--threads`` (0 = torch's default, all cores). On a shared machine run it with
``OMP_WAIT_POLICY=PASSIVE`` (the benchmark does): with the default spin-waiting, 2 OpenMP
threads on 2 busy cores were measured 5-13x slower than 1 thread (barrier spinning while
the other thread is descheduled); passive waiting removes that pathology.

Peak memory: resident-set high-water mark (``/proc/self/status`` VmHWM) over the timed
calls minus the resident set before them (the HWM is reset through ``/proc/self/clear_refs``
where the kernel allows it), i.e. what the iteration itself allocates.

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


def convnet_shapes(channels=3, side=32, width=128, depth=3, num_classes=10):
    """[(name, shape)] of MTT's ConvNet parameters, in ``net.parameters()`` order."""
    shapes = []
    c, s = channels, side
    for d in range(depth):
        shapes += [(f"conv{d}.w", (width, c, 3, 3)), (f"conv{d}.b", (width,)),
                   (f"norm{d}.w", (width,)), (f"norm{d}.b", (width,))]
        c, s = width, s // 2
    shapes += [("fc.w", (num_classes, c * s * s)), ("fc.b", (num_classes,))]
    return shapes


def make_convnet(shapes, depth=3):
    """forward(x NCHW, flat) -> logits: the ConvNet from one flat parameter vector."""
    import torch.nn.functional as F

    sizes = [math.prod(s) for _, s in shapes]

    def forward(x, flat):
        ps = [p.view(s) for p, (_, s) in zip(flat.split(sizes), shapes)]
        for d in range(depth):
            w, b, gw, gb = ps[4 * d: 4 * d + 4]
            x = F.conv2d(x, w, b, padding=1)
            x = F.group_norm(x, w.shape[0], gw, gb, eps=1e-5)
            x = F.relu(x)
            x = F.avg_pool2d(x, 2, 2)
        x = x.flatten(1)
        return F.linear(x, ps[-2], ps[-1])

    return forward


def build(num_images=10, syn_steps=20, batch_syn=0, side=32, channels=3, num_classes=10,
          width=128, depth=3, seed=0, threads=None):
    """Returns (step, state): ``step()`` runs one full MTT outer iteration in place."""
    import torch
    import torch.nn.functional as F

    if threads:
        torch.set_num_threads(int(threads))
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
    starting = torch.cat(flat0)
    target = starting + 0.01 * torch.randn(starting.shape, generator=g)
    net = make_convnet(shapes, depth)

    images = torch.randn(num_images, channels, side, side, generator=g).requires_grad_(True)
    labels = torch.arange(num_images) % num_classes
    syn_lr = torch.tensor(0.01).requires_grad_(True)
    opt_img = torch.optim.SGD([images], lr=100.0, momentum=0.5)
    opt_lr = torch.optim.SGD([syn_lr], lr=1e-5, momentum=0.5)
    bs = num_images if not batch_syn else min(batch_syn, num_images)

    def step():
        student = [starting.clone().requires_grad_(True)]
        chunks = []
        for _ in range(syn_steps):
            if not chunks:
                chunks = list(torch.split(torch.randperm(num_images, generator=g), bs))
            idx = chunks.pop()
            out = net(images[idx], student[-1])
            ce = F.cross_entropy(out, labels[idx])
            grad = torch.autograd.grad(ce, student[-1], create_graph=True)[0]
            student.append(student[-1] - syn_lr * grad)
        num = F.mse_loss(student[-1], target, reduction="sum")
        den = F.mse_loss(starting, target, reduction="sum")
        loss = num / den
        opt_img.zero_grad()
        opt_lr.zero_grad()
        loss.backward()
        opt_img.step()
        opt_lr.step()
        return float(loss.detach())

    return step, {"num_params": int(starting.numel())}


def flat_from_jax(params, depth=3):
    """jaxdd ConvNet params (NHWC, flax names) -> the flat PyTorch vector (numpy float64).

    conv kernel (3, 3, Cin, Cout) -> (Cout, Cin, 3, 3); instance-norm scale/bias as is;
    classifier kernel (H*W*C, classes) in (H, W, C) flatten order -> (classes, C*H*W).
    """
    import numpy as np

    parts = []
    for d in range(depth):
        k = np.asarray(params[f"conv_{d}"]["kernel"], np.float64)
        parts += [k.transpose(3, 2, 0, 1), np.asarray(params[f"conv_{d}"]["bias"]),
                  np.asarray(params[f"norm_{d}"]["scale"]), np.asarray(params[f"norm_{d}"]["bias"])]
    w = np.asarray(params["classifier"]["kernel"], np.float64)
    c = parts[-4].shape[0]
    s = int(round((w.shape[0] // c) ** 0.5))
    parts += [w.reshape(s, s, c, -1).transpose(3, 2, 0, 1).reshape(w.shape[1], -1),
              np.asarray(params["classifier"]["bias"])]
    return np.concatenate([np.asarray(p, np.float64).reshape(-1) for p in parts])


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

    max_seconds: stop repeating once the timed calls have taken this long (>= 1 call)."""
    import torch

    step, info = build(num_images, syn_steps, batch_syn, threads=threads, **kw)
    for _ in range(warmup):
        step()
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
    return {"impl": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "num_images": num_images, "syn_steps": syn_steps, "batch_syn": batch_syn,
            "seconds_median": statistics.median(ts), "seconds_all": ts,
            "cpu_seconds_median": statistics.median(cpus),
            "peak_bytes": peak, "peak_kind": "rss_hwm_delta", **info}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--num_images", type=int, default=10)
    ap.add_argument("--syn_steps", type=int, default=20)
    ap.add_argument("--batch_syn", type=int, default=0)
    ap.add_argument("--side", type=int, default=32)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--num_classes", type=int, default=10)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--max_seconds", type=float, default=0.0)
    a = ap.parse_args(argv)
    r = bench(a.num_images, a.syn_steps, a.batch_syn, a.repeats, a.warmup, a.threads or None,
              max_seconds=a.max_seconds or None, side=a.side, channels=a.channels, num_classes=a.num_classes, width=a.width,
              depth=a.depth)
    print("TORCH_RESULT " + json.dumps(r))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
