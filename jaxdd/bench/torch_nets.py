"""The networks and decoders of the PyTorch peer (jaxdd.bench.torch_reference), written the
way the authors' code does them: MTT's ConvNet evaluated from one flat parameter vector
(``make_convnet``, and ``flat_from_jax`` to load jaxdd's parameters into it), FreD's inverse
DCT matrix and DDiF's SIREN fields on their coordinate grid. torch is imported inside the
functions only.
"""
from __future__ import annotations

import math


def first_pad(channels):
    """The authors' first-conv padding: 3 for one-channel input (MTT networks.py ConvNet),
    1 otherwise."""
    return 3 if int(channels) == 1 else 1


def convnet_shapes(channels=3, side=32, width=128, depth=3, num_classes=10):
    """[(name, shape)] of MTT's ConvNet parameters, in ``net.parameters()`` order.

    The classifier is sized from the real feature map (gray padding included: 28x28x1 ->
    32x32 after the first conv)."""
    shapes = []
    c, s = channels, side + 2 * (first_pad(channels) - 1)
    for d in range(depth):
        shapes += [(f"conv{d}.w", (width, c, 3, 3)), (f"conv{d}.b", (width,)),
                   (f"norm{d}.w", (width,)), (f"norm{d}.b", (width,))]
        c, s = width, s // 2
    shapes += [("fc.w", (num_classes, c * s * s)), ("fc.b", (num_classes,))]
    return shapes


def make_convnet(shapes, depth=3):
    """forward(x NCHW, flat) -> logits: the ConvNet from one flat parameter vector.

    Like MTT's ReparamModule: the flat vector is split into views of the parameter shapes
    (``flat.split(sizes)`` + ``view``) on every call and the layers run functionally
    (``F.conv2d``, ``F.group_norm`` = instance norm, ReLU, ``F.avg_pool2d``, ``F.linear``).
    """
    import torch.nn.functional as F

    sizes = [math.prod(s) for _, s in shapes]
    pad0 = first_pad(shapes[0][1][1])

    def forward(x, flat):
        ps = [p.view(s) for p, (_, s) in zip(flat.split(sizes), shapes)]
        for d in range(depth):
            w, b, gw, gb = ps[4 * d: 4 * d + 4]
            x = F.conv2d(x, w, b, padding=pad0 if d == 0 else 1)
            x = F.group_norm(x, w.shape[0], gw, gb, eps=1e-5)
            x = F.relu(x)
            x = F.avg_pool2d(x, 2, 2)
        x = x.flatten(1)
        return F.linear(x, ps[-2], ps[-1])

    return forward


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


# ----------------------------------------------------------------------------- decoders

def idct_matrix(n):
    """(n, n) matrix M with ``x = X @ M`` along the last axis the inverse of the unnormalized
    DCT-II (``X_k = 2 sum_j x_j cos(pi k (2 j + 1) / 2n)``, the torch-dct convention FreD
    uses with ``norm=None``)."""
    import numpy as np

    k = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    c = np.cos(np.pi * k * (2 * j + 1) / (2 * n))          # (k, j)
    w = np.full((n, 1), 1.0 / n)
    w[0] = 0.5 / n
    return (c * w).astype(np.float32)                      # x_j = sum_k X_k w_k c_kj


def siren_budget(dim_in, width, num_layers, dim_out):
    """Floats of one DDiF SIREN field: num_layers sine layers of `width` + a linear output."""
    n, d = 0, dim_in
    for _ in range(num_layers):
        n += d * width + width
        d = width
    return n + d * dim_out + dim_out


def make_siren(dim_in, width, num_layers, dim_out, w0_initial=30.0, w0=10.0, generator=None):
    """One DDiF field as a ``torch.nn.Module`` (sine layers + linear head, DDiF's SIREN init:
    first layer U(-1/d, 1/d), others U(-sqrt(6/d)/w0, +))."""
    import torch
    from torch import nn

    class Field(nn.Module):
        def __init__(self):
            super().__init__()
            dims = [dim_in] + [width] * num_layers
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
            self.head = nn.Linear(width, dim_out)
            self.w0s = [w0_initial] + [w0] * (num_layers - 1)
            with torch.no_grad():
                for i, lin in enumerate(list(self.layers) + [self.head]):
                    d = lin.in_features
                    b = (1.0 / d) if i == 0 else math.sqrt(6.0 / d) / (
                        w0 if i > 0 else w0_initial)
                    lin.weight.uniform_(-b, b, generator=generator)
                    lin.bias.uniform_(-b, b, generator=generator)

        def forward(self, c):
            for lin, w in zip(self.layers, self.w0s):
                c = torch.sin(w * lin(c))
            return self.head(c)

    return Field()


def field_coords(h, w):
    """DDiF's coordinate grid: (h*w, 2) in [-1, 1], row-major."""
    import torch

    ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    c = torch.stack([ii, jj], -1).reshape(-1, 2).float()
    return (c / (h - 1) - 0.5) * 2
