"""The validation leak check on pools built to leak and on pools that should not.

mtkd carves its validation split out of the data set's TFDS `train` split. A teacher trained
elsewhere on the whole of `train` has seen those rows. This builds such a pool: the default
pool's `cnn`, and two scikit-learn random forests given as external logits, `forest_all` fitted on
the whole train split and `forest_honest` fitted on every row but mtkd's validation carve. It
trains the pool in OUT/leaky/ (the forests take seconds; the CNN about a minute on 2 cores) and
prints, for it and for the pools already cached (the default pool and any other under
~/.cache/mtkd/pools), each teacher's validation and test accuracy, the gap in standard errors and
whether it is flagged (more than 3).

    python experiments/leak_check.py --out runs/leak_check
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from mtkd.data import load_dataset
from mtkd.data.loading import load_full_splits
from mtkd.distill.pool_training import train_pool
from mtkd.teachers import default_pool_dir
from mtkd.teachers.leak import leak_gap
from mtkd.teachers.spec import load_pool_spec

SPEC = """description = "The default cnn and two random forests: one fitted on all of train, one not on validation."

[[teachers]]
name = "cnn"
arch = "cnn1d"
epochs = 40
learning_rate = 1e-2

[[teachers]]
name = "forest_all"
external = "forest_all.npz"

[[teachers]]
name = "forest_honest"
external = "forest_honest.npz"
"""


def forest_logits(x_fit, y_fit, x_train, x_test, seed=0):
    """Log of the forest's smoothed class probabilities on the whole train split and on test."""
    forest = RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=2).fit(x_fit, y_fit)
    logits = lambda x: np.log(forest.predict_proba(x) + 1e-3).astype(np.float32)  # noqa: E731
    return logits(x_train), logits(x_test)


def report(name: str, manifest: dict, num_val: int, num_test: int) -> None:
    print(f"\npool {name}")
    print(f"{'teacher':<16} {'val %':>7} {'test %':>7} {'gap (SE)':>9}  flagged")
    for teacher in manifest["teachers"]:
        check = leak_gap(teacher["val_accuracy"], teacher["test_accuracy"], num_val, num_test)
        sigmas = "inf" if check["sigmas"] is None else f"{check['sigmas']:.1f}"
        print(f"{teacher['name']:<16} {100 * teacher['val_accuracy']:7.2f} {100 * teacher['test_accuracy']:7.2f} "
              f"{sigmas:>9}  {'yes' if check['flagged'] else 'no'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory (the leaky pool goes to OUT/leaky/)")
    args = parser.parse_args()
    out = Path(args.out)
    full = load_full_splits("mnist1d")
    splits = load_dataset("mnist1d")
    x_train = full.x_train.reshape(len(full.x_train), -1)
    x_test = full.x_test.reshape(len(full.x_test), -1)
    (out / "spec").mkdir(parents=True, exist_ok=True)
    for name, rows in (("forest_all", np.arange(len(full.y_train))), ("forest_honest", splits.train_index)):
        train, test = forest_logits(x_train[rows], full.y_train[rows], x_train, x_test)
        np.savez(out / "spec" / f"{name}.npz", train=train, test=test)
    (out / "spec" / "leaky.toml").write_text(SPEC)
    spec = load_pool_spec(out / "spec" / "leaky.toml", "mnist1d")
    train_pool("mnist1d", spec, out / "leaky", resume=True, announce=False)
    report("leaky", json.loads((out / "leaky" / "pool.json").read_text()), splits.num_val, splits.num_test)
    for cached in sorted(default_pool_dir("mnist1d").parent.glob("mnist1d-*/pool.json")):
        report(cached.parent.name, json.loads(cached.read_text()), splits.num_val, splits.num_test)


if __name__ == "__main__":
    main()
