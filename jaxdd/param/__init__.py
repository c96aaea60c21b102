"""Parameterizations: how a synthetic set is stored under a budget and decoded to images.

Each parameterization is a module of pure functions (docs/design.md):

    default_config() -> ConfigDict
    init(key, real_images_by_class, cfg) -> (params, aux)
    decode(params, aux, *, indices=None, resolution=None) -> images (N, H, W, C)
    budget(params, aux) -> int
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


def template(pm, key, real_images_by_class, cfg):
    """Params with the structure and shapes `pm.init` gives (what a checkpoint restores
    into): the module's own `template` when it has one (it skips expensive init work such
    as DDiF's warm-up), else `init`'s params."""
    fn = getattr(pm, "template", None)
    if fn is not None:
        return fn(key, real_images_by_class, cfg)
    return pm.init(key, real_images_by_class, cfg)[0]
