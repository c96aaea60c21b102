"""Process-wide JAX settings the entry points apply before any JAX work.

`enable_compile_cache` turns on JAX's persistent compilation cache, so that a second run
with the same shapes (a resumed run, a sweep over seeds or learning rates, the next
config of a table) loads its compiled steps from disk instead of compiling them again.
Measured on the MTT pixel step of the authors comparison (28x28x1, ConvNetD3, 20 student
steps, 2-core CPU): compile 13.1 s -> 2.7 s and the process's RSS high-water 813 ->
527 MiB (XLA's compiler is the largest single user of host memory in a TM run).

The cache key covers the computation, the jax/jaxlib versions, the backend and the XLA
flags, so a stale entry is never used. Only compilations that took at least
`min_compile_s` are stored (jax's default, 1 s): the many tiny eager ops are not.
"""
from __future__ import annotations

import os
import warnings

__all__ = ["DEFAULT_COMPILE_CACHE", "ENV_COMPILE_CACHE", "CompileAhead",
           "compile_released", "enable_compile_cache", "release_host_memory"]

ENV_COMPILE_CACHE = "JAXDD_COMPILE_CACHE"
DEFAULT_COMPILE_CACHE = os.path.join("~", ".cache", "jaxdd", "xla")
_OFF = ("", "0", "off", "none", "false", "no")


def enable_compile_cache(path: str | None = None, min_compile_s: float | None = None):
    """Use a persistent XLA compilation cache in `path`.

    path: a directory; None reads $JAXDD_COMPILE_CACHE, falling back to
      ~/.cache/jaxdd/xla; '', '0', 'off' or 'none' (either way) leave the cache off.
    min_compile_s: store only compilations at least this long (None: jax's default).
    Returns the absolute directory in use, or None when the cache is off or the directory
    cannot be created (a warning names it; the run goes on without a cache).
    """
    import jax

    if path is None:
        path = os.environ.get(ENV_COMPILE_CACHE, DEFAULT_COMPILE_CACHE)
    if str(path).strip().lower() in _OFF:
        return None
    path = os.path.abspath(os.path.expanduser(str(path)))
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        warnings.warn(f"compilation cache {path} cannot be created ({e}); running without "
                      f"one (set {ENV_COMPILE_CACHE}=off to silence this)")
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    if min_compile_s is not None:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_s))
    return path


_LIBC = None


def release_host_memory() -> bool:
    """Return the heap memory the process has freed to the operating system (glibc's
    ``malloc_trim(0)``); a no-op returning False where glibc is not available.

    Why: compiling a large step (XLA's passes and LLVM) allocates a few hundred MiB on
    the host and frees it again, but glibc keeps most of the freed memory mapped (spread
    over its per-thread arenas), so the process's resident set stays at the compile's
    size and the step's own buffers come on top. Measured on the MTT pixel step of the
    authors comparison (28x28x1, ConvNetD3, 20 student steps, 2-core CPU, issue 17):
    after compiling, RSS 661 MiB; after this call 380 MiB; running the step then peaks at
    532 instead of 813 MiB. `jaxdd.outer_step.Step` compiles its outer step through
    :func:`compile_released` (:class:`CompileAhead`).
    """
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes
            import ctypes.util

            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC = lib if hasattr(lib, "malloc_trim") else False
        except OSError:
            _LIBC = False
    if not _LIBC:
        return False
    return bool(_LIBC.malloc_trim(0))


def compile_released(jitted, *args, **static_kwargs):
    """``jitted.lower(*args, **static_kwargs).compile()`` between two
    :func:`release_host_memory` calls: what was freed before goes back to the OS before the
    compiler allocates, and the compiler's own freed memory before the caller runs the
    executable. Returns the compiled executable."""
    release_host_memory()
    try:
        return jitted.lower(*args, **static_kwargs).compile()
    finally:
        release_host_memory()


class CompileAhead:
    """A jitted function whose first call for each argument signature compiles ahead of
    running, with :func:`release_host_memory` before and after the compile, so the
    compiler's freed memory is back with the OS before the computation's own buffers are
    allocated (the process's peak is then the larger of the two, not their sum).

    ``CompileAhead(jax.jit(f, static_argnames=...))(*args, **static_kwargs)``: keyword
    arguments are the jitted function's static arguments. Calls go to the compiled
    executable of their signature (tree structure, shapes, dtypes, weak types, shardings,
    static values); should an executable reject its arguments, that signature falls back
    to the jitted function (which compiles what it needs, as a plain jit call would).
    """

    def __init__(self, jitted):
        self.jitted = jitted
        self._compiled = {}

    @staticmethod
    def _signature(args, kwargs):
        import jax

        leaves, tree = jax.tree.flatten(args)
        # hashable attributes as they are (no string formatting: this runs on every call)
        avals = tuple((getattr(x, "shape", None), getattr(x, "dtype", type(x)),
                       getattr(x, "weak_type", False), getattr(x, "sharding", None))
                      for x in leaves)
        return tree, avals, tuple(sorted(kwargs.items()))

    def __call__(self, *args, **kwargs):
        sig = self._signature(args, kwargs)
        fn = self._compiled.get(sig)
        if fn is None:
            try:
                fn = compile_released(self.jitted, *args, **kwargs)
            except Exception:  # noqa: BLE001 - tracing errors surface from the jit call
                fn = False
            self._compiled[sig] = fn
        if fn:
            try:
                return fn(*args)
            except (TypeError, ValueError):
                self._compiled[sig] = False
        return self.jitted(*args, **kwargs)

    @property
    def fallbacks(self) -> int:
        """How many signatures run on the jitted function instead (0 when all compiled)."""
        return sum(1 for v in self._compiled.values() if v is False)
