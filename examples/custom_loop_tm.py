"""Your own training loop, jaxdd's pure functions: FreD + trajectory matching on digits.

No jaxdd loop is involved (no ``jaxdd.distill``): this script takes the pieces it needs
and writes the distillation step itself, as one ``jax.jit``-ed function with explicit keys.

    data        jaxdd.data.load_dataset("digits")      embedded, offline, 8x8x1, 10 classes
    experts     jaxdd.experts.train_experts            a tiny expert trajectory (SGD, vmap)
    param       jaxdd.param.get("fred")                init(key, images_by_class, cfg) ->
                                                       (params, aux); decode(params, aux)
    objective   jaxdd.objective.tm.make_loss           loss(key, images, labels, TMContext)
    optimizer   optax.adam                             on the coefficients and log(syn_lr)

Run (from the repository root, a few seconds on a CPU):

    python examples/custom_loop_tm.py --steps 40
    python examples/custom_loop_tm.py --steps 5 --json /tmp/losses.json

Every step prints ``step <i> loss <value>``; ``--json`` also writes the losses to a file.
By default there is one expert and one start epoch, and every student step sees every
synthetic image, so the loss is a deterministic function of the synthetic set and goes
down step by step. Raise --experts / --max-start and set --batch-syn for the random
expert, start epoch and minibatches of real runs (docs/methods.md describes TM).
"""
import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdd import data, experts, param
from jaxdd.models import get_model
from jaxdd.objective import tm


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="distillation steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--experts", type=int, default=1, help="expert trajectories to train")
    ap.add_argument("--max-start", type=int, default=1, help="start epoch ~ U{0..max-1}")
    ap.add_argument("--expert-epochs", type=int, default=1, help="epochs the student matches")
    ap.add_argument("--syn-steps", type=int, default=4, help="student steps per evaluation")
    ap.add_argument("--batch-syn", type=int, default=0, help="0: all images every step")
    ap.add_argument("--lr", type=float, default=0.02, help="Adam step on the coefficients")
    ap.add_argument("--json", default="", help="write {'losses': [...]} here")
    args = ap.parse_args(argv)

    key = jax.random.key(args.seed)
    k_expert, k_init, k_loop = jax.random.split(key, 3)

    # 1. data and a small stateless student network (instance norm, no BatchNorm)
    train, test = data.load_dataset("digits", resolution=8)
    model = get_model("ConvNetD1W8", num_classes=train.num_classes)

    # 2. expert trajectories with jaxdd's training core: leaves (experts, epochs + 1, ...)
    epochs = args.max_start + args.expert_epochs
    trajs, acc = experts.train_experts(k_expert, model, train, test,
                                       num_experts=args.experts, epochs=epochs, lr=0.01,
                                       dsa_strategy="none", progress=False)
    trajs = jax.tree.map(jnp.asarray, trajs)
    print(f"experts: {args.experts} x {epochs} epochs, test accuracy {np.mean(acc):.1%}")

    # 3. the parameterization: FreD keeps k DCT coefficients per channel of each image
    fred = param.get("fred")
    cfg = fred.default_config()
    # 8 * 8 / k = 4 images per class; 'ortho' keeps the coefficients on the pixels' scale
    # (the published configs use 'none' with SGD at the authors' lr, e.g. 1e8)
    cfg.ipc, cfg.k, cfg.norm = 1, 16, "ortho"
    syn_params, aux = fred.init(k_init, data.images_by_class(train), cfg)
    labels = jnp.asarray(aux["labels"])
    print(f"FreD: {len(labels)} images, budget {fred.budget(syn_params, aux)} floats "
          f"(= {cfg.ipc} pixel image(s) per class)")

    # 4. the objective: trajectory matching through a student unrolled over syn_steps
    def apply_fn(p, x):
        return model.apply({"params": p}, x, train=True)

    tm_loss = tm.make_loss(apply_fn, syn_steps=args.syn_steps, batch_syn=args.batch_syn,
                           augment=None, remat=True)

    # 5. what we learn (the coefficients and the student's learning rate) and how
    state = {"coef": syn_params, "log_syn_lr": jnp.log(jnp.float32(0.01))}
    tx = optax.adam(args.lr)
    opt_state = tx.init(state)

    @jax.jit   # trajs is an argument, not a closure: a real buffer is not baked into the HLO
    def step(state, opt_state, trajs, key):
        k_pick, k_loss = jax.random.split(key)
        e, s = tm.draw_expert_start(k_pick, args.experts, args.max_start)
        start = jax.tree.map(lambda t: t[e, s], trajs)
        target = jax.tree.map(lambda t: t[e, s + args.expert_epochs], trajs)

        def objective(state):
            images = fred.decode(state["coef"], aux)           # (N, 8, 8, 1)
            ctx = tm.TMContext(start=start, target=target,
                               syn_lr=jnp.exp(state["log_syn_lr"]))
            return tm_loss(k_loss, images, labels, ctx)

        loss, grads = jax.value_and_grad(objective)(state)
        updates, opt_state = tx.update(grads, opt_state, state)
        return optax.apply_updates(state, updates), opt_state, loss

    losses = []
    for i in range(args.steps):
        state, opt_state, loss = step(state, opt_state, trajs, jax.random.fold_in(k_loop, i))
        losses.append(float(loss))
        print(f"step {i} loss {losses[-1]:.6f}", flush=True)

    syn_lr = float(jnp.exp(state["log_syn_lr"]))
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}; learned syn_lr {syn_lr:.4g}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"losses": losses, "syn_lr": syn_lr,
                       "num_images": len(labels)}, f)
    return losses


if __name__ == "__main__":
    main()
