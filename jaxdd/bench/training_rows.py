"""The suite's training sections: expert training (``experts``: E experts together under
vmap vs one at a time) and evaluation training (``eval``: K networks together vs one at a
time), in images/s.
"""
from __future__ import annotations

import inspect
import time

from jaxdd.bench.report import _print_row
from jaxdd.bench.timing import _rate, forward_flops, measure


def experts_section(cfg, ceil):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxdd import experts
    from jaxdd.models import get_model

    e = cfg.experts
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(e.num_examples, cfg.side, cfg.side, cfg.channels))
                    .astype(np.float32))
    y = jnp.asarray(rng.integers(0, cfg.num_classes, e.num_examples).astype(np.int32))
    model = get_model(cfg.model, cfg.num_classes)
    keys = experts.expert_keys(jax.random.PRNGKey(0), e.num_experts)
    params, k_train = experts._make_init_fn(model)(keys, x[:1])
    epoch_fn = experts.make_epoch_fn(model, e.batch_size, e.dsa_strategy)
    lr = jnp.float32(0.01)
    singles = [(jax.tree.map(lambda a: a[i:i + 1], params), k_train[i:i + 1])
               for i in range(e.num_experts)]
    t0 = time.perf_counter()
    jax.block_until_ready(epoch_fn(params, k_train, jnp.int32(0), x, y, lr))
    c_tog = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(epoch_fn(*singles[0], jnp.int32(0), x, y, lr))
    c_one = time.perf_counter() - t0
    tog = measure(lambda: epoch_fn(params, k_train, jnp.int32(0), x, y, lr)[0], e.repeats)
    one = measure(lambda: [epoch_fn(p, k, jnp.int32(0), x, y, lr)[0] for p, k in singles],
                  e.repeats)
    f_img = forward_flops(model, jax.tree.map(lambda a: a[0], params), x[:1])
    imgs = e.num_experts * e.num_examples
    rows = []
    for mode, r, c in (("together", tog, c_tog), ("one_at_a_time", one, c_one)):
        row = {"workload": "expert_training_epoch", "mode": mode, "num_experts": e.num_experts,
               "num_examples": e.num_examples, "batch_size": e.batch_size,
               "dsa": e.dsa_strategy, "first_call_s": c, **r,
               "images_per_s": imgs / r["seconds_median"],
               **_rate(3 * f_img * imgs, r["seconds_median"], ceil, r["cpu_seconds_median"])}
        rows.append(row)
        _print_row(row)
    rows[0]["speedup_vs_one_at_a_time"] = one["seconds_median"] / tog["seconds_median"]
    return rows


def eval_section(cfg, ceil):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxdd import evaluate
    from jaxdd.models import get_model

    ev = cfg.eval
    rows = []
    model = get_model(cfg.model, cfg.num_classes)
    for num_train in ev.num_train:
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.normal(size=(num_train, cfg.side, cfg.side, cfg.channels))
                        .astype(np.float32))
        y = jnp.asarray((np.arange(num_train) % cfg.num_classes).astype(np.int32))
        init_all, train_epochs, _ = evaluate.make_eval_fns(
            model, num_train=num_train, epochs=ev.schedule_epochs, batch_size=ev.batch_size,
            dsa_strategy=ev.dsa_strategy)
        k = ev.num_nets
        params, opt = init_all(jax.random.split(jax.random.PRNGKey(0), k), x[:1])
        keys = jax.random.split(jax.random.PRNGKey(1), k * ev.epochs).reshape(k, ev.epochs, -1)
        lr = jnp.float32(0.01)
        sl = lambda t, i: jax.tree.map(lambda a: a[i:i + 1], t)
        extra = ()
        if "op_keys" in inspect.signature(train_epochs).parameters:  # shared DSA op keys
            extra = (jax.random.split(jax.random.PRNGKey(2), ev.epochs),)

        def train(p, o, ks):
            return train_epochs(p, o, ks, *extra, x, y, lr, n_epochs=ev.epochs)[0]

        run_tog = lambda: train(params, opt, keys)
        run_one = lambda: [train(sl(params, i), sl(opt, i), keys[i:i + 1]) for i in range(k)]
        t0 = time.perf_counter()
        jax.block_until_ready(run_tog())
        c_tog = time.perf_counter() - t0
        t0 = time.perf_counter()
        jax.block_until_ready(train(sl(params, 0), sl(opt, 0), keys[:1]))
        c_one = time.perf_counter() - t0
        tog = measure(run_tog, ev.repeats)
        one = measure(run_one, ev.repeats)
        bs = min(ev.batch_size, num_train)
        steps = -(-num_train // bs) * ev.epochs
        f_b = forward_flops(model, jax.tree.map(lambda a: a[0], params), x[:bs])
        imgs = k * num_train * ev.epochs
        pair = []
        for mode, r, c in (("together", tog, c_tog), ("one_at_a_time", one, c_one)):
            row = {"workload": "eval_training", "mode": mode, "num_nets": k,
                   "num_train": num_train, "epochs": ev.epochs, "batch_size": bs,
                   "dsa": ev.dsa_strategy, "first_call_s": c, **r,
                   "images_per_s": imgs / r["seconds_median"],
                   **_rate(3 * f_b * steps * k, r["seconds_median"], ceil,
                           r["cpu_seconds_median"])}
            pair.append(row)
            _print_row(row)
        pair[0]["speedup_vs_one_at_a_time"] = one["seconds_median"] / tog["seconds_median"]
        rows += pair
    return rows
