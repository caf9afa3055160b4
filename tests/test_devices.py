"""Seeds split over several devices (fit, DML, BYOT, the joint selector, the episodic selector's
environments) (forced host devices, in a subprocess: the device count is
fixed when JAX starts): the same per-seed results as on one device, the count recorded, and a
resume that continues on the same devices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent('''
    import dataclasses, json, sys
    import jax, jax.numpy as jnp, numpy as np
    from mtkd.data import load_dataset
    from mtkd.devices import seed_placement
    from mtkd.distill.config import TrainConfig
    from mtkd.distill.fit import SplitArrays, fit
    from mtkd.fusion import StrategyContext, make_strategy
    from mtkd.models import ModelSpec
    from mtkd.run_checkpoints import CheckpointConfig, EpochCheckpoints

    data_dir, scratch = sys.argv[1], sys.argv[2]
    d = load_dataset("mnist1d", data_dir=data_dir)
    train = SplitArrays(jnp.asarray(d.x_train[:1024]), jnp.asarray(d.y_train[:1024]))
    val = SplitArrays(jnp.asarray(d.x_val), jnp.asarray(d.y_val))
    test = SplitArrays(jnp.asarray(d.x_test), jnp.asarray(d.y_test))

    def run(devices, checkpoints=None, seeds=(0, 1, 2, 3)):
        return fit(ModelSpec("mlp", {"widths": [16]}), d.input_shape, d.num_classes, train, val,
                   make_strategy("none", StrategyContext((), ())), TrainConfig(epochs=3, batch_size=128),
                   seeds, test=test, devices=devices, checkpoints=checkpoints)

    one = run(1, seeds=range(5))
    five = run(4, seeds=range(5))  # 3 devices of 2 seeds: one copy of seed 4 padded, then dropped
    loop = lambda: EpochCheckpoints(scratch + "/loop", CheckpointConfig(every_epochs=1))
    # 4 seeds on 4 devices; the second run resumes from the first's epoch 2.
    four, resumed = run(4, loop()), run(4, loop())
    leaves = lambda r: [np.asarray(x).tolist() for x in jax.tree.leaves(r.params)]
    from mtkd.distill.byot import fit_byot, ByotConfig
    from mtkd.dml import run_dml
    small = TrainConfig(epochs=2, batch_size=256)
    dml = [run_dml(d, [ModelSpec("mlp", {"widths": [8]})] * 2, small, [0, 1, 2], devices=n, log=lambda line: None)
           for n in (1, 2)]  # 3 seeds on 2 devices: padded to 4
    byot = [fit_byot(d, ModelSpec("byot", {"channels": [8, 8], "blocks": 0}), small, [0, 1], ByotConfig(0.3, 3.0, 0.03),
                     devices=n) for n in (1, 2)]
    # The joint selector: its students and selectors split over the devices, its clock shared.
    from mtkd.agents.joint import train_jointly
    from mtkd.agents.selector_config import SelectorConfig
    rng = np.random.default_rng(0)
    fake = lambda y: jnp.asarray(np.stack([3 * np.eye(10)[y] + rng.normal(size=(len(y), 10)) for _ in range(2)]),
                                 jnp.float32)  # two noisy teachers
    small_splits = dataclasses.replace(d, x_train=d.x_train[:512], y_train=d.y_train[:512])
    logits = {"train": fake(small_splits.y_train), "val": fake(d.y_val)}
    joint = [train_jointly(logits, small_splits, [0.9, 0.8], ModelSpec("mlp", {"widths": [8]}),
                           TrainConfig(epochs=2, batch_size=128), SelectorConfig(credit_every=1), [0, 1, 2],
                           test=False, devices=n) for n in (1, 2)]  # 3 seeds on 2 devices: padded to 4
    # The episodic selector's environments: 4 per episode, one per device.
    from mtkd.agents.config import AgentConfig
    from mtkd.agents.reinforce import make_trainer
    from mtkd import envs
    env_params = envs.make_env_params(logits["train"], logits["val"], small_splits.x_train, small_splits.y_train,
                                      d.x_val, d.y_val, envs.EnvConfig(student={"arch": "mlp", "options": {"widths": [8]}},
                                                                       epochs=1, batch_size=128))
    episodic = []
    for n in (1, 4):
        trainer = make_trainer(AgentConfig(num_envs=4, episodes=2), env_params, devices=n)
        carry, keys = jax.jit(trainer.start)(jax.random.key(0))
        carry, metrics = jax.jit(trainer.episodes)(carry, keys, jnp.arange(2))
        episodic.append({"return": np.asarray(metrics["return"]).tolist(),
                         "selection": np.asarray(metrics["selection"]).tolist(),
                         "sharding": str(metrics["return"].sharding.spec) if n > 1 else None})
    # An ablation restricted to 2 of the 4 devices (its `devices` key, `mtkd ablate --devices`).
    from mtkd.ablation import ablation_config_from_dict, run_ablation
    run_ablation(ablation_config_from_dict({"dataset": "mnist1d", "data_dir": data_dir, "pool_dir": sys.argv[3],
                                            "seeds": 3, "devices": 2, "strategies": ["uniform"],
                                            "student": {"arch": "mlp", "options": {"widths": [8]}},
                                            "train": {"epochs": 1, "batch_size": 256}}), scratch + "/ablation",
                 log=lambda line: None)
    ablation = json.loads(open(scratch + "/ablation/results.json").read())
    print(json.dumps({
        "ablation": [ablation["devices"], ablation["padded_seeds"], ablation["rows"][0]["seeds"]],
        "sharding": [str(x.sharding.spec) for x in jax.tree.leaves(four.params)][:1],
        "placements": {n: [seed_placement(n).devices, seed_placement(n).padding] for n in (1, 2, 3, 4, 5, 6, 7, 8)},
        "one": [one.val_accuracy, one.test_accuracy, one.best_epoch],
        "four": [four.val_accuracy, four.test_accuracy, four.best_epoch],
        "five": [five.val_accuracy, five.test_accuracy, five.best_epoch, five.seeds,
                 [len(leaf) for leaf in jax.tree.leaves(five.params)]],
        "loss_one": [r["train_loss"] for r in one.history], "loss_four": [r["train_loss"] for r in four.history],
        "loss_five": [r["train_loss"] for r in five.history],
        "resume_equal": four.history == resumed.history and leaves(four) == leaves(resumed),
        "dml": [[r.val_accuracy, r.test_accuracy, r.best_epoch] for r in dml],
        "byot": [[r.val_accuracy, r.test_accuracy, r.best_epoch] for r in byot],
        "joint": [[r.val_accuracy, r.best_epoch, [x["selection"] for x in r.history]] for r in joint],
        "episodic": episodic,
        "joint_rounds": [[len(x["credit"]) for x in r.rounds] for r in joint],
        "joint_policies": [len(leaf) for leaf in jax.tree.leaves(joint[1].policy_params)],
    }))
''')


def test_seeds_on_four_forced_host_devices(data_dir, tiny_pool_dir, tmp_path):
    env = {**os.environ, "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, data_dir, str(tmp_path), str(tiny_pool_dir)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["sharding"] in (["P('seeds',)"], ["PartitionSpec('seeds',)"])
    # As few devices as give the fewest seeds per device; padding where they do not divide evenly.
    assert report["placements"] == {"1": [1, 0], "2": [2, 0], "3": [3, 0], "4": [4, 0], "5": [3, 1], "6": [3, 0],
                                    "7": [4, 1], "8": [4, 0]}
    # Accuracies and chosen epochs are the same; the losses agree to float32 rounding only: with
    # one seed per device XLA's CPU kernels see a batch of 1 instead of 5 and round differently.
    assert report["four"] == [values[:4] for values in report["one"]]
    for got, want in zip(report["loss_four"], report["loss_one"]):
        assert max(abs(g - w) / abs(w) for g, w in zip(got, want[:4])) < 1e-5
    # 5 seeds padded to 6 on 3 devices: the five asked for, each with its numbers of one device.
    assert report["five"][:3] == report["one"] and report["five"][3] == [0, 1, 2, 3, 4]
    assert set(report["five"][4]) == {5}  # the parameters of five seeds, not six
    for got, want in zip(report["loss_five"], report["loss_one"]):
        assert len(got) == 5 and max(abs(g - w) / abs(w) for g, w in zip(got, want)) < 1e-5
    assert report["resume_equal"]
    assert report["ablation"] == [2, 1, [0, 1, 2]]  # 3 seeds on at most 2 devices: padded to 4
    assert report["dml"][0] == report["dml"][1]  # DML peers: each seed's peers together on one device
    assert report["byot"][0] == report["byot"][1]
    # The joint selector's 3 seeds on 2 devices (padded to 4): the same accuracies and epochs as on
    # one device, selections to rounding; credit rounds and policies of the 3 seeds only.
    one, four = report["joint"]
    assert one[:2] == four[:2]
    np.testing.assert_allclose(np.asarray(four[2]), np.asarray(one[2]), atol=1e-5)
    # The episodic selector's 4 environments on 4 devices: split (its per-environment returns come
    # back split), the same selections, returns to float32 rounding.
    single, split = report["episodic"]
    assert "seeds" in split["sharding"]
    np.testing.assert_allclose(split["selection"], single["selection"], atol=1e-6)
    np.testing.assert_allclose(split["return"], single["return"], atol=1e-5)
    assert report["joint_rounds"] == [[3], [3]] and set(report["joint_policies"]) == {3}  # padding dropped
