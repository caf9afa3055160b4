"""An adversarial MNIST-1D pool of *accurate but misleading* teachers, for the selector.

Writes OUT/ (default `runs/pools/soft_liars`): three external teacher files and `soft_liars.toml`
(`soft_liars_seedN.toml` for `--seed N`),
a pool spec with the default pool's honest `cnn`, `resnet` and `mlp_wide` recipes (trained by
mtkd) and three teachers derived from the honest CNNs' own logits, each with *exactly* their
arg-max, so their accuracy on every split equals the honest teacher's:

- `resnet_reranked`: resnet's logits with the ranking of the nine non-top classes reversed on
  every example: the same multiset of logits, so the same confidence and entropy at every
  temperature, but the class it calls most similar is the one it calls least likely, and so on
  (wrong class similarities). Accuracy-, confidence- and entropy-based weightings see an exact
  copy of resnet.
- `cnn_reranked`: the same on cnn.
- `cnn_smoothed`: over-smoothed and badly calibrated: cnn's top class keeps a fixed small
  margin over the others, whose logits are random (per example, fixed seed): its arg-max is cnn's,
  its soft targets at the distillation temperature are near uniform with noise for dark
  knowledge.

Every source teacher is trained on mtkd's training part only (the validation split carved by
`--val-fraction 0.1 --split-seed 0`, the defaults), so no teacher saw validation. The honest
sources are the default pool's own recipes, trained (or reused) in OUT/sources/.

    python experiments/pools/soft_liars.py --out runs/pools/soft_liars [--seed 0]
(`--seed`: the honest sources' training seed and the smoothing noise's: another seed builds another
pool with the same teacher names and the same kinds of defect, for transfer), then point an ablation's `pool` at OUT/soft_liars.toml (experiments/soft_liars.toml does).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mtkd.data import load_dataset
from mtkd.distill.pool_training import ensure_pool

HONEST = """
[[teachers]]
name = "cnn"
arch = "cnn1d"
learning_rate = 1e-2

[[teachers]]
name = "resnet"
arch = "resnet"
options = { channels = 32, blocks = 2, kernel_size = 5 }
learning_rate = 3e-3

[[teachers]]
name = "mlp_wide"
arch = "mlp"
options = { widths = [512, 512] }
"""

SPEC = """description = "Honest cnn, resnet and mlp_wide, and three accurate-but-misleading copies of the CNNs \
(experiments/pools/soft_liars.py): resnet_reranked and cnn_reranked (the non-top classes' ranking reversed: \
same arg-max, confidence and entropy, wrong class similarities) and cnn_smoothed (same arg-max, near-uniform \
noisy soft targets)."

[defaults]
epochs = 40
batch_size = 128
learning_rate = 1e-3
""" + HONEST + """
[[teachers]]
name = "resnet_reranked"
external = "resnet_reranked.npz"

[[teachers]]
name = "cnn_reranked"
external = "cnn_reranked.npz"

[[teachers]]
name = "cnn_smoothed"
external = "cnn_smoothed.npz"
"""


def reverse_non_top_ranking(logits: np.ndarray) -> np.ndarray:
    """Per row: the top logit stays on its class; the other classes get the other logits in
    reversed order (the second-highest class gets the lowest value, ...)."""
    order = np.argsort(-logits, axis=1)  # classes by decreasing logit
    values = np.take_along_axis(logits, order, axis=1)
    out = np.empty_like(logits)
    rows = np.arange(len(logits))[:, None]
    out[rows, order[:, :1]] = values[:, :1]
    out[rows, order[:, 1:]] = values[:, :0:-1]  # ranks 1..C-1 receive values C-1..1
    return out


def smoothed(logits: np.ndarray, rng: np.random.Generator, margin: float = 0.5, spread: float = 0.4) -> np.ndarray:
    """The top class `margin` above the best of random non-top logits in [0, spread)."""
    top = logits.argmax(axis=1)
    noise = rng.random(logits.shape) * spread
    noise[np.arange(len(logits)), top] = spread + margin
    return noise.astype(np.float32)


def full_train_logits(pool, splits, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A pool teacher's logits on the whole TFDS train split (TFDS order) and on test."""
    k = pool.names.index(name)
    logits = {split: np.asarray(value[k]) for split, value in pool.logits(splits).items()}
    full = np.zeros((len(splits.train_index) + len(splits.val_index), logits["train"].shape[1]), np.float32)
    full[splits.train_index], full[splits.val_index] = logits["train"], logits["val"]
    return full, logits["test"]


def seeded(spec: str, seed: int) -> str:
    """The spec with every mtkd-trained teacher given training seed `seed` (0: as written)."""
    return spec if seed == 0 else spec.replace('arch = "', f'seed = {seed}\narch = "')


def write_pool(out: Path, seed: int = 0) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    splits = load_dataset("mnist1d")
    (out / "sources.toml").write_text('description = "The honest sources of the soft liars."\n\n[defaults]\n'
                                      'epochs = 40\nbatch_size = 128\nlearning_rate = 1e-3\n' + seeded(HONEST, seed))
    pool = ensure_pool("mnist1d", str(out / "sources.toml"), out_dir=out / "sources")
    rng = np.random.default_rng(7 + seed)
    full_y = np.zeros(len(splits.train_index) + len(splits.val_index), np.int64)
    full_y[splits.train_index], full_y[splits.val_index] = splits.y_train, splits.y_val
    made = {}
    for source in ("resnet", "cnn"):
        train, test = full_train_logits(pool, splits, source)
        made[f"{source}_reranked"] = (reverse_non_top_ranking(train), reverse_non_top_ranking(test))
        if source == "cnn":
            made["cnn_smoothed"] = (smoothed(train, rng), smoothed(test, rng))
        for name in [n for n in made if n.startswith(source)]:
            new_train, new_test = made[name]
            assert (new_train.argmax(1) == train.argmax(1)).all() and (new_test.argmax(1) == test.argmax(1)).all()
    for name, (train, test) in made.items():
        np.savez(out / f"{name}.npz", train=train, test=test)
        print(f"{name}: train-split accuracy {100 * np.mean(train.argmax(1) == full_y):.1f}%, "
              f"test {100 * np.mean(test.argmax(1) == splits.y_test):.1f}%")
    # Another seed, another file name: an ablation caches a spec's pool under its name.
    spec = out / ("soft_liars.toml" if seed == 0 else f"soft_liars_seed{seed}.toml")
    spec.write_text(seeded(SPEC, seed))
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/pools/soft_liars", help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="training seed of the honest sources (default: %(default)s)")
    args = parser.parse_args()
    print(write_pool(Path(args.out), args.seed))


if __name__ == "__main__":
    main()
