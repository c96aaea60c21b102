"""jaxdd.runtime.enable_compile_cache: the persistent XLA compilation cache of the entry
points (launch/*.py call it before any JAX work)."""
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from jaxdd.runtime import enable_compile_cache


def test_off_values_and_env(monkeypatch, tmp_path):
    before = jax.config.jax_compilation_cache_dir
    for off in ("off", "", "0", "None", " OFF "):
        assert enable_compile_cache(off) is None
    monkeypatch.setenv("JAXDD_COMPILE_CACHE", "off")
    assert enable_compile_cache() is None
    assert jax.config.jax_compilation_cache_dir == before   # nothing changed


def test_unwritable_directory_warns_and_runs_without(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    import pytest
    with pytest.warns(UserWarning, match="cannot be created"):
        assert enable_compile_cache(str(blocker / "cache")) is None


def test_second_process_loads_the_compiled_step(tmp_path):
    """A fresh process with the cache compiles a jitted step and stores it; a second one
    finds the entry (jax's cache-hit counter) and gets the same numbers."""
    cache = tmp_path / "xla"
    prog = textwrap.dedent(f"""
        import jax, jax.numpy as jnp
        from jax import monitoring
        hits = []
        monitoring.register_event_listener(
            lambda name, **kw: hits.append(name) if "cache_hits" in name else None)
        from jaxdd.runtime import enable_compile_cache
        print("DIR", enable_compile_cache({str(cache)!r}, min_compile_s=0))
        f = jax.jit(lambda x: jnp.sin(x) @ x.T + 1.0)
        print("OUT", float(f(jnp.arange(12.0).reshape(3, 4)).sum()))
        print("HITS", len(hits))
    """)
    env = {k: v for k, v in os.environ.items() if k != "JAXDD_COMPILE_CACHE"}

    def run():
        out = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                             env=env, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return dict(line.split(" ", 1) for line in out.stdout.splitlines()
                    if line.split(" ", 1)[0] in ("DIR", "OUT", "HITS"))

    first = run()
    assert first["DIR"] == str(cache) and first["HITS"] == "0"
    assert any(cache.iterdir()), "nothing was written to the cache"
    second = run()
    assert second["OUT"] == first["OUT"] and int(second["HITS"]) >= 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_host_memory_returns_freed_heap_to_the_os():
    """Freed small allocations between live ones stay resident under glibc until
    malloc_trim: a process that freed ~200 MiB of them drops its RSS by most of it."""
    prog = textwrap.dedent("""
        import gc
        from jaxdd.runtime import release_host_memory
        def rss():
            return [int(l.split()[1]) for l in open('/proc/self/status')
                    if l.startswith('VmRSS')][0] // 1024
        junk, keep = [], []
        for i in range(50000):        # ~200 MiB of blocks below mmap's threshold, with a
            junk.append(bytearray(4000))          # small survivor every 64 blocks: the
            if i % 64 == 0:                       # freed space is holes, not a heap top
                keep.append(bytearray(16))
        del junk; gc.collect()
        before = rss()
        ok = release_host_memory()
        print("RES", ok, before, rss())
    """)
    out = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    ok, before, after = out.stdout.split("RES ", 1)[1].split()
    assert ok in ("True", "False")
    assert int(before) - int(after) > 100, (before, after)


def test_compile_ahead_compiles_once_per_signature_and_falls_back():
    import jax.numpy as jnp

    from jaxdd.runtime import CompileAhead

    traces = []

    def f(x, y, scale=1.0):
        traces.append(x.shape)
        return x * scale + y

    ca = CompileAhead(jax.jit(f, static_argnames=("scale",)))
    x, y = jnp.arange(6.0), jnp.ones(6)
    assert float(ca(x, y, scale=2.0).sum()) == float((x * 2 + y).sum())
    ca(x + 1, y, scale=2.0)                      # same signature: no new trace
    assert len(traces) == 1 and len(ca._compiled) == 1
    ca(jnp.arange(4.0), jnp.ones(4), scale=2.0)   # new shape
    ca(x, y, scale=3.0)                           # new static value
    assert len(traces) == 3 and len(ca._compiled) == 3 and ca.fallbacks == 0

    def rejects(*args):
        raise TypeError("argument types differ")

    sig = next(iter(ca._compiled))
    ca._compiled[sig] = rejects                   # an executable that refuses its inputs
    np.testing.assert_allclose(ca(x, y, scale=2.0), x * 2 + y)
    assert ca.fallbacks == 1
