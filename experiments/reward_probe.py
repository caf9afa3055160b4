"""Which validation reward sees a teacher's effect within one epoch? (docs/methods.md, The selector's reward)

From states of one student trained with every teacher of a pool (the environment's pure core),
branch one epoch on the same batches with teacher k's weight at 0 and at 3 (the others at 1), and
compare three rewards at the branch ends: validation accuracy, validation loss, and the
temperature-calibrated validation loss. Prints, per reward and teacher, the mean effect of the
dose (positive: more of k helps) and its t statistic over the branch sets (start epochs x seeds).

    python experiments/reward_probe.py --pool experiments/pools/mnist1d_misleading.toml
"""

from __future__ import annotations

import argparse
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.envs.config import EnvConfig
from mtkd.envs.core import reset, step
from mtkd.envs.params import make_env_params, student_graphdef
from mtkd.data import load_dataset
from mtkd.distill.objective import calibrated_cross_entropy, cross_entropy
from mtkd.distill.pool_training import ensure_pool
from mtkd.models.apply import apply_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", default="experiments/pools/mnist1d_misleading.toml", help="pool spec or preset")
    parser.add_argument("--starts", default="5,20,50,100", help="epochs of the reference run to branch from")
    parser.add_argument("--seeds", type=int, default=2, help="reference runs (default: %(default)s)")
    parser.add_argument("--dose", type=float, default=3.0, help="teacher k's weight in the 'more' branch")
    args = parser.parse_args()

    splits = load_dataset("mnist1d")
    pool = ensure_pool("mnist1d", args.pool)
    logits = pool.logits(splits)
    names, num_teachers = list(pool.names), len(pool.names)
    params = make_env_params(logits["train"], logits["val"], splits.x_train, splits.y_train, splits.x_val,
                             splits.y_val, EnvConfig(student={"arch": "mlp", "options": {"widths": [100, 100]}},
                                                     epochs=1000, reward="val_loss_gain", eval_every=2**30))
    decisions = int(params.decisions_per_epoch)
    graphdef = student_graphdef(params)

    @partial(jax.jit, static_argnums=2)
    def run(state, action, n):
        return jax.lax.scan(lambda s, _: (step(None, s, action, params)[1], None), state, None, length=n)[0]

    @jax.jit
    def rewards(state, actions):
        def one(action):
            end = run(state, action, decisions)
            z = apply_model(graphdef, end.student.params, params.x_val)[0]
            return jnp.stack([jnp.mean(jnp.argmax(z, -1) == params.y_val) * 100,
                              -cross_entropy(z, params.y_val).mean(), -calibrated_cross_entropy(z, params.y_val)])
        return jax.vmap(one)(actions)

    ones = np.ones(num_teachers, np.float32)
    less = np.stack([np.where(np.arange(num_teachers) == k, 0.0, 1.0) for k in range(num_teachers)])
    more = np.stack([np.where(np.arange(num_teachers) == k, args.dose, 1.0) for k in range(num_teachers)])
    actions = jnp.asarray(np.concatenate([less, more]), jnp.float32)
    effects = []
    for seed in range(args.seeds):
        _, state = reset(jax.random.key(100 + seed), params)
        done = 0
        for start in sorted(int(e) for e in args.starts.split(",")):
            state = run(state, jnp.asarray(ones), decisions * (start - done)) if start > done else state
            done = start
            values = np.asarray(rewards(state, actions))  # (2K, 3)
            effects.append(values[num_teachers:] - values[:num_teachers])  # (K, 3)
    effects = np.asarray(effects)  # (branch sets, K, 3)
    mean, se = effects.mean(0), effects.std(0, ddof=1) / np.sqrt(len(effects))
    print(f"{len(effects)} branch sets; effect of teacher k at weight {args.dose:g} instead of 0, one epoch")
    print(f"{'reward':30s}" + "".join(f"{n:>14s}" for n in names))
    for i, label in enumerate(["validation accuracy (points)", "-validation loss", "-calibrated validation loss"]):
        print(f"{label:30s}" + "".join(f"{m:+9.3f} t{t:+5.1f}" for m, t in zip(mean[:, i], mean[:, i] / se[:, i])))


if __name__ == "__main__":
    main()
