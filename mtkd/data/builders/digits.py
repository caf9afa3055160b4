"""TFDS builder for scikit-learn's bundled 8x8 handwritten digits (no download)."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from mtkd.data.builders.base import EmbeddedBuilder

# The fixed test split: 20% of the 1797 images, stratified by class, drawn with seed 0.
TEST_FRACTION = 0.2
TEST_SPLIT_SEED = 0
# Pixel values in the scikit-learn data are integers 0..16.
MAX_PIXEL_VALUE = 16.0


def make_digits_arrays() -> dict[str, np.ndarray]:
    """Digits as images (N, 8, 8, 1) float32 in [0, 1] (pixel / 16) and int64 labels.

    Returns x / y (1437 train) and x_test / y_test (360 test). Both splits keep the original
    scikit-learn order (the split indices are sorted).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / MAX_PIXEL_VALUE).astype(np.float32)[..., None]
    labels = digits.target.astype(np.int64)
    train_index, test_index = train_test_split(
        np.arange(len(labels)),
        test_size=TEST_FRACTION,
        random_state=TEST_SPLIT_SEED,
        stratify=labels,
    )
    train_index, test_index = np.sort(train_index), np.sort(test_index)
    return {
        "x": images[train_index],
        "y": labels[train_index],
        "x_test": images[test_index],
        "y_test": labels[test_index],
    }


class Digits(EmbeddedBuilder, skip_registration=True):
    """scikit-learn digits: 1437 train / 360 test images (8, 8, 1) float32 in [0, 1], 10 classes.
    """

    name = "digits"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Stratified 80/20 train/test split with seed 0; pixels / 16."}

    def _info(self) -> tfds.core.DatasetInfo:
        # `dataset_info_from_configs` needs a TFDS package directory; build the info directly.
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "UCI optical recognition of handwritten digits, 8x8 version bundled with "
                "scikit-learn (sklearn.datasets.load_digits). Pixels scaled to [0, 1] by "
                "dividing by 16. Test split: 20%, stratified by class, random_state=0."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.float32),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            disable_shuffling=True,  # keep scikit-learn's order
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        data = make_digits_arrays()
        return {
            "train": self._generate_examples(data["x"], data["y"]),
            "test": self._generate_examples(data["x_test"], data["y_test"]),
        }

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray):
        for index, (image, label) in enumerate(zip(images, labels)):
            yield index, {"image": image, "label": int(label)}
