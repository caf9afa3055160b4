"""8 seeds of a uniform-fusion `fit` on 1, 2 and 4 forced host devices of this machine.

Each device count runs in its own process (XLA fixes the count when it starts) with
`--xla_force_host_platform_device_count=D`: the default pool's 4 cached teachers, the default MLP
student, `--epochs` epochs. It prints, per device count, the wall time of the whole `fit` call
(compilation included) and the median seconds per epoch after the first (from epoch
timestamps), and their ratios to one device. On a 2-core CPU the forced devices share the same
cores, so this measures the overhead of splitting the seeds, not a speed-up; on a machine with D
real devices the same split runs each device's seeds in parallel.

    python experiments/forced_devices.py --out runs/forced_devices
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, statistics, sys, time
import jax, jax.numpy as jnp
from mtkd.data import load_dataset
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit
from mtkd.distill.pool_training import ensure_pool
from mtkd.fusion import make_strategy
from mtkd.models import ModelSpec

seeds, epochs = int(sys.argv[1]), int(sys.argv[2])
splits = load_dataset("mnist1d")
pool = ensure_pool("mnist1d", "default")
logits = pool.logits(splits)
train = SplitArrays(jnp.asarray(splits.x_train), jnp.asarray(splits.y_train), logits["train"])
val = SplitArrays(jnp.asarray(splits.x_val), jnp.asarray(splits.y_val))
stamps = []
started = time.perf_counter()
result = fit(ModelSpec("mlp", {"widths": [100, 100]}), splits.input_shape, splits.num_classes, train, val,
             make_strategy("uniform", pool.strategy_context()), TrainConfig(epochs=epochs), list(range(seeds)),
             on_epoch=lambda record: stamps.append(time.perf_counter()))
wall = time.perf_counter() - started
steps = [b - a for a, b in zip(stamps[:-1], stamps[1:])]
print(json.dumps({"devices": len(jax.devices()), "wall_seconds": wall, "epoch_seconds": statistics.median(steps),
                  "val_accuracy": result.val_accuracy}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory (forced_devices.json)")
    parser.add_argument("--seeds", type=int, default=8, help="vmapped seeds (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=40, help="epochs per run (default: %(default)s)")
    parser.add_argument("--devices", default="1,2,4", help="forced device counts (default: %(default)s)")
    args = parser.parse_args()
    rows = []
    for count in [int(d) for d in args.devices.split(",")]:
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={count}", "JAX_PLATFORMS": "cpu"}
        done = subprocess.run([sys.executable, "-c", CHILD, str(args.seeds), str(args.epochs)], env=env,
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = rows[0]
    for row in rows:
        row["epoch_ratio_to_first"] = row["epoch_seconds"] / base["epoch_seconds"]
        row["wall_ratio_to_first"] = row["wall_seconds"] / base["wall_seconds"]
        row["same_val_accuracy"] = row["val_accuracy"] == base["val_accuracy"]
        print(f"{row['devices']} devices: fit {row['wall_seconds']:.2f} s ({row['wall_ratio_to_first']:.2f}x), "
              f"epoch {1e3 * row['epoch_seconds']:.1f} ms ({row['epoch_ratio_to_first']:.2f}x), "
              f"same accuracies as {base['devices']} device(s): {row['same_val_accuracy']}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "forced_devices.json").write_text(json.dumps({"seeds": args.seeds, "epochs": args.epochs, "rows": rows},
                                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
