"""An adversarial MNIST-1D pool of *badly calibrated* teachers: accurate, with confidence that
points the wrong way.

Writes OUT/ (default `runs/pools/miscalibrated`): two external teacher files and
`miscalibrated.toml`, a pool spec with the soft liars' honest `cnn`, `resnet` and `mlp_wide`
(the same recipes, trained or reused in OUT/sources/) and two copies of the honest CNNs with
*exactly* their arg-max, so the same accuracy on every split:

- `resnet_inverted` and `cnn_inverted`: each example's logits multiplied by a positive factor
  that falls with the honest teacher's own confidence on it: x4 on its least confident example,
  x0.25 on its most confident, log-linear in the confidence's rank between. The arg-max and the
  ranking of the classes stay; the soft targets are sharpest where the teacher is most likely
  wrong and flattest where it is surely right (calibration inverted). No label is read to build
  them.

    python experiments/pools/miscalibrated.py --out runs/pools/miscalibrated
then point an ablation's `pool` at OUT/miscalibrated.toml (experiments/miscalibrated.toml does).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

from mtkd.data import load_dataset
from mtkd.distill.pool_training import ensure_pool

_spec = importlib.util.spec_from_file_location("soft_liars", Path(__file__).with_name("soft_liars.py"))
soft_liars = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(soft_liars)

SPEC = """description = "Honest cnn, resnet and mlp_wide, and two accurate copies of the CNNs with inverted \
calibration (experiments/pools/miscalibrated.py): the same arg-max and class ranking, the logits scaled up where \
the honest teacher is least confident and down where it is most."

[defaults]
epochs = 40
batch_size = 128
learning_rate = 1e-3
""" + soft_liars.HONEST + """
[[teachers]]
name = "resnet_inverted"
external = "resnet_inverted.npz"

[[teachers]]
name = "cnn_inverted"
external = "cnn_inverted.npz"
"""


def inverted_calibration(logits: np.ndarray, low: float = 0.25, high: float = 4.0) -> np.ndarray:
    """Each row times a factor from `high` (the least confident row) down to `low` (the most),
    log-linear in the rank of the row's softmax confidence."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    confidence = 1.0 / np.exp(shifted).sum(axis=1)  # the top class's softmax probability
    rank = np.argsort(np.argsort(confidence)) / max(len(logits) - 1, 1)  # 0: least confident
    factor = np.exp(np.log(high) + rank * (np.log(low) - np.log(high)))
    return (logits * factor[:, None]).astype(np.float32)


def write_pool(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    splits = load_dataset("mnist1d")
    (out / "sources.toml").write_text('description = "The honest sources of the miscalibrated pool."\n\n'
                                      '[defaults]\nepochs = 40\nbatch_size = 128\nlearning_rate = 1e-3\n'
                                      + soft_liars.HONEST)
    pool = ensure_pool("mnist1d", str(out / "sources.toml"), out_dir=out / "sources")
    for source in ("resnet", "cnn"):
        train, test = soft_liars.full_train_logits(pool, splits, source)
        new_train, new_test = inverted_calibration(train), inverted_calibration(test)
        assert (new_train.argmax(1) == train.argmax(1)).all() and (new_test.argmax(1) == test.argmax(1)).all()
        np.savez(out / f"{source}_inverted.npz", train=new_train, test=new_test)
        print(f"{source}_inverted: test accuracy {100 * np.mean(new_test.argmax(1) == splits.y_test):.1f}% "
              f"(the honest {source}'s, by construction)")
    spec = out / "miscalibrated.toml"
    spec.write_text(SPEC)
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/pools/miscalibrated", help="output folder (default: %(default)s)")
    print(write_pool(Path(parser.parse_args().out)))


if __name__ == "__main__":
    main()
