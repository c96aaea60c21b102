"""The network against the data: does it take examples of this rank and size (a shape-only
trace); `jaxdd.validate.model_at_resolution` (re-exported there)."""
from __future__ import annotations

from typing import Optional

__all__ = ["model_at_resolution"]


def model_at_resolution(model_name, overrides, image_shape, num_classes) -> Optional[str]:
    """None if the network runs on examples of ``image_shape`` ((H, W, C) images and
    spectrograms, (T, H, W, C) video, (D, H, W, C) voxels), else a message: a data rank the
    network does not take (e.g. ConvNet on video) names the networks that do; a size it
    cannot reduce names the smallest size it runs at (a shape-only trace, no compute)."""
    import jax
    import jax.numpy as jnp

    from jaxdd.models import get_model, input_rank
    from jaxdd.models.layers import rank_mismatch

    ov = overrides.to_dict() if hasattr(overrides, "to_dict") else dict(overrides or {})

    try:
        model = get_model(str(model_name), int(num_classes), **ov)
    except Exception:  # noqa: BLE001 -- an unbuildable model is reported by the config check
        return None
    shape = tuple(int(s) for s in image_shape)
    try:
        rank = input_rank(model)
    except TypeError:
        rank = None
    if rank is not None and len(shape) + 1 != rank:
        return rank_mismatch(str(model_name), model.layout, shape, example=True)

    def ok(shp):
        try:
            jax.eval_shape(lambda k: model.init(k, jnp.zeros((1,) + tuple(shp), jnp.float32),
                                                train=False), jax.random.PRNGKey(0))
            return None
        except Exception as e:  # noqa: BLE001
            return f"{type(e).__name__}: {e}"

    err = ok(shape)
    if err is None:
        return None
    if len(shape) == 4:   # (T or D, H, W, C)
        video = type(model).__name__ == "ConvNet3D"
        d, h, w, c = shape
        what = f"{d}x{h}x{w} {'clips (frames x H x W)' if video else 'volumes'}"
        for s in (16, 32, 64, 112, 128):
            cand = (d, s, s, c) if video else (s, s, s, c)
            if s > max(h, w) and ok(cand) is None:
                hint = (f" It runs at {'x'.join(map(str, cand[:3]))}: prepare the data at "
                        f"that size, or pass model overrides (e.g. depth) that fit")
                break
        else:
            hint = " Choose another network (or depth) for this size."
        return f"model {model_name} cannot run on {what} ({err}).{hint}"
    h, w, c = shape[-3:] if len(shape) >= 3 else (shape + (1,))[:3]
    side = None
    for s in (32, 64, 128, 256):
        if s > max(h, w) and ok((s, s, c)) is None:
            side = s
            break
    hint = (f" It runs at {side}x{side}: distill at a larger --config.dataset.resolution, or "
            f"evaluate this set with launch/evaluate.py --resolution={side} (DDiF/FreD decode "
            f"at any resolution; pixel sets are resized)" if side else
            " Choose another network for this resolution.")
    return f"model {model_name} cannot run on {h}x{w} images ({err}).{hint}"
