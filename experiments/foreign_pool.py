"""The selector on a pool it was not designed against: teachers from another framework and new ways
of misleading.

Builds, in OUT/pool/, a pool of six MNIST-1D teachers:
- `cnn`, `resnet`: the default pool's two good recipes, trained by mtkd;
- `mlp_overfit`: a wide MLP trained on 5% of the training split for 200 epochs (it has memorised
  the examples it saw and is poor on the rest);
- `ridge`: a ridge-regression classifier fitted in NumPy (closed form, one-hot targets), given as
  external logits, as a teacher from another framework would be;
- `knn`: 10-nearest-neighbour votes in NumPy (leave-one-out on the training split), external;
- `ridge_reversed`: the ridge teacher's logits negated and sharpened, external: confident, and
  most confident on the class its source thinks least likely.

The external teachers are fitted on the whole TFDS training split, as a user's teacher from
another framework would be, so their validation accuracy is slightly optimistic (mtkd carves the
validation split from the same rows: these teachers saw the validation split). Then it runs the
ablation (none, uniform, weighted, confidence, ebkd, ca_mkd, ae_kd, best_subset, rl,
rl:per_example; 5 seeds, 150 epochs) into OUT/ablation/ and prints its table.

    python experiments/foreign_pool.py --out runs/foreign_pool
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mtkd.ablation.config import load_ablation_config
from mtkd.ablation.run import run_ablation
from mtkd.data.loading import load_full_splits

POOL_SPEC = """description = "Two mtkd CNNs, an overfitted MLP and three NumPy teachers (one reversed)."

[defaults]
epochs = 40
batch_size = 128
learning_rate = 1e-3

[[teachers]]
name = "cnn"
arch = "cnn1d"
learning_rate = 1e-2

[[teachers]]
name = "resnet"
arch = "resnet"
options = {{ channels = 32, blocks = 2, kernel_size = 5 }}
learning_rate = 3e-3

[[teachers]]
name = "mlp_overfit"
arch = "mlp"
options = {{ widths = [512, 512] }}
data_fraction = 0.05
epochs = 200

[[teachers]]
name = "ridge"
external = "ridge.npz"

[[teachers]]
name = "knn"
external = "knn.npz"

[[teachers]]
name = "ridge_reversed"
external = "ridge_reversed.npz"
"""

ABLATION = """description = "The selector on teachers from another framework (experiments/foreign_pool.py)."
dataset = "mnist1d"
pool = "pool/foreign.toml"
seeds = {seeds}
strategies = ["none", "uniform", "weighted", "confidence", "ebkd", "ca_mkd", "ae_kd", "best_subset", "rl",
              "rl:per_example"]

[student]
arch = "mlp"
options = {{ widths = [100, 100] }}

[train]
epochs = {epochs}
alpha = 0.3
temperature = 8.0
"""


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(0), train.std(0) + 1e-6
    return (train - mean) / std, (test - mean) / std


def ridge_logits(x_train, y_train, x_test, num_classes, l2=1.0, scale=4.0):
    """Closed-form ridge regression on one-hot targets, with a bias column; scores as logits."""
    design = np.hstack([x_train, np.ones((len(x_train), 1))])
    targets = np.eye(num_classes)[y_train]
    weights = np.linalg.solve(design.T @ design + l2 * np.eye(design.shape[1]), design.T @ targets)
    score = lambda x: np.hstack([x, np.ones((len(x), 1))]) @ weights  # noqa: E731
    return scale * score(x_train), scale * score(x_test)


def knn_logits(x_train, y_train, x_test, num_classes, k=10):
    """Log of smoothed k-nearest-neighbour vote shares; a training row never votes for itself."""
    def votes(queries, leave_self_out):
        distances = (queries ** 2).sum(1)[:, None] - 2 * queries @ x_train.T + (x_train ** 2).sum(1)[None]
        if leave_self_out:
            np.fill_diagonal(distances, np.inf)
        nearest = np.argpartition(distances, k, axis=1)[:, :k]
        counts = np.zeros((len(queries), num_classes))
        np.add.at(counts, (np.arange(len(queries))[:, None], y_train[nearest]), 1.0)
        return np.log((counts + 0.5) / (k + 0.5 * num_classes))
    return votes(x_train, True), votes(x_test, False)


def write_pool(folder: Path) -> None:
    splits = load_full_splits("mnist1d")
    num_classes = int(splits.info["num_classes"])
    x_train, x_test = standardise(splits.x_train.reshape(len(splits.x_train), -1),
                                  splits.x_test.reshape(len(splits.x_test), -1))
    folder.mkdir(parents=True, exist_ok=True)
    ridge_train, ridge_test = ridge_logits(x_train, splits.y_train, x_test, num_classes)
    knn_train, knn_test = knn_logits(x_train, splits.y_train, x_test, num_classes)
    teachers = {"ridge": (ridge_train, ridge_test), "knn": (knn_train, knn_test),
                "ridge_reversed": (-2.0 * ridge_train, -2.0 * ridge_test)}
    for name, (train, test) in teachers.items():
        np.savez(folder / f"{name}.npz", train=train.astype(np.float32), test=test.astype(np.float32))
        accuracy = lambda z, y: 100 * float((z.argmax(1) == y).mean())  # noqa: E731
        print(f"{name}: train {accuracy(train, splits.y_train):.1f}%, test {accuracy(test, splits.y_test):.1f}%")
    (folder / "foreign.toml").write_text(POOL_SPEC.format())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory (the pool goes to OUT/pool/)")
    parser.add_argument("--seeds", type=int, default=5, help="student seeds (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=150, help="student epochs (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="start the ablation again")
    args = parser.parse_args()
    out = Path(args.out)
    write_pool(out / "pool")
    config_path = out / "foreign_ablation.toml"
    config_path.write_text(ABLATION.format(seeds=args.seeds, epochs=args.epochs))
    run_ablation(load_ablation_config(config_path), out / "ablation", overwrite=args.overwrite)
    print((out / "ablation" / "results.md").read_text())


if __name__ == "__main__":
    main()
