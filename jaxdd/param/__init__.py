"""Parameterizations: how a synthetic set is stored under a budget and decoded to images.

Each parameterization is a module of pure functions (docs/design.md):

    default_config() -> ConfigDict
    init(key, real_images_by_class, cfg) -> (params, aux)
    decode(params, aux, *, indices=None, resolution=None) -> data (N, *grid, C)
    budget(params, aux) -> int
    budget_line(cfg, image_shape) -> str  (the storage-per-class rule in one line, from the
        config alone: print it before any expensive work; raises ValueError naming the
        quantity when the budget cannot fit)

Every parameterization works on any grid, channels last: images (N, H, W, C), audio
spectrograms (N, F, T, 1), video (N, T, H, W, C), voxels (N, D, H, W, 1); decode is
jit/vmap-able on all of them. What is published per modality and what is an extension is
in each module's docstring (FreD: 3-D voxels published, video an extension; DDiF: voxels and
video published; NSD: images only published, other grids an extension).
    template(key, real_images_by_class, cfg) -> params   (optional: the structure and
        shapes of init's params, cheaply, for restoring a checkpoint; default: init)

`get(name)` returns the module. Parameterizations never import `jaxdd.objective`.
"""
import importlib

_NAMES = {
    "pixel": "jaxdd.param.pixel",
    "fred": "jaxdd.param.fred",
    "ddif": "jaxdd.param.ddif",
    "nsd": "jaxdd.param.nsd",
}


def available():
    return sorted(_NAMES)


def get(name: str):
    """Return the parameterization module called `name` (pixel, fred, ddif, nsd)."""
    key = name.lower()
    if key == "vanilla":
        raise ValueError("the pixel parameterization is called 'pixel' now, not 'vanilla': "
                         "set param.name='pixel' (configs/*_pixel.py). Synthetic sets saved "
                         "under the old name still load (jaxdd.io.load_synthetic)")
    if key not in _NAMES:
        raise ValueError(f"Unknown parameterization {name!r}; available: {available()}")
    return importlib.import_module(_NAMES[key])


def budget_line(name_or_module, cfg, image_shape) -> str:
    """The parameterization's one-line budget rule for ``cfg`` on data of shape
    (*grid, C) (``image_shape`` = Dataset.image_shape), checked before any init work."""
    pm = get(name_or_module) if isinstance(name_or_module, str) else name_or_module
    shape = tuple(int(s) for s in image_shape)
    if not 2 <= len(shape) <= 4:
        raise ValueError(f"{pm.__name__.rsplit('.', 1)[-1]}: data of shape {shape} are not "
                         "(*grid, C) with 1-3 grid axes: images / spectrograms (H, W, C), "
                         "video (T, H, W, C) or voxels (D, H, W, 1)")
    return pm.budget_line(cfg, shape)


def template(pm, key, real_images_by_class, cfg):
    """Params with the structure and shapes `pm.init` gives (what a checkpoint restores
    into): the module's own `template` when it has one (it skips expensive init work such
    as DDiF's warm-up), else `init`'s params."""
    fn = getattr(pm, "template", None)
    if fn is not None:
        return fn(key, real_images_by_class, cfg)
    return pm.init(key, real_images_by_class, cfg)[0]
