"""The CIFAR-100 protocol as recipes (experiments/cifar100_kd.toml, cifar100_multi_teacher.toml),
`[[pairs]]` and `--teacher-epochs`, and a synthetic 32x32x3 `cifar100` read as the real one is
(imported under the catalog's name, normalised by the reference's channel statistics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mtkd.ablation import load_ablation_config
from mtkd.ablation.config import AblationConfig, ablation_config_from_dict
from mtkd.data import load_dataset
from mtkd.data.importing import import_arrays_as
from mtkd.data.normalization import CHANNEL_STATISTICS
from mtkd.errors import ConfigError
from mtkd.teachers.spec import load_pool_spec

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
PROTOCOL = {"batch_size": 64, "learning_rate": 0.05, "optimizer": "sgd", "weight_decay": 5e-4,
            "lr_milestones": "150,180,210", "augment": "crop_flip"}
# mdistiller's KD table: teacher -> student.
PAIRS = {"resnet56-resnet20": ("resnet56", "resnet20"), "resnet110-resnet32": ("resnet110", "resnet32"),
         "resnet32x4-resnet8x4": ("resnet32x4", "resnet8x4"), "wrn_40_2-wrn_16_2": ("wrn_40_2", "wrn_16_2"),
         "wrn_40_2-wrn_40_1": ("wrn_40_2", "wrn_40_1"), "vgg13-vgg8": ("vgg13", "vgg8")}


def synthetic_cifar100(folder: Path, train: int = 120, test: int = 40, seed: int = 0) -> str:
    """A small data set shaped as CIFAR-100 (uint8 32x32x3 images, 100 classes), written by TFDS's
    writer as `cifar100` under `folder`; returns the data directory."""
    rng = np.random.default_rng(seed)
    y_train = np.concatenate([np.arange(100), rng.integers(0, 100, train - 100)])
    arrays = {"x_train": rng.integers(0, 256, (train, 32, 32, 3)).astype(np.uint8), "y_train": y_train,
              "x_test": rng.integers(0, 256, (test, 32, 32, 3)).astype(np.uint8),
              "y_test": rng.integers(0, 100, test)}
    import_arrays_as("cifar100", arrays, str(folder))
    np.savez(folder / "arrays.npz", **arrays)
    return str(folder)


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    return synthetic_cifar100(tmp_path_factory.mktemp("cifar100"))


def test_a_synthetic_cifar100_reads_as_the_catalog_name_normalised(cifar_dir):
    splits = load_dataset("cifar100", data_dir=cifar_dir)
    arrays = np.load(Path(cifar_dir) / "arrays.npz")
    mean, std = (np.asarray(s, np.float32) for s in CHANNEL_STATISTICS["cifar100"])
    assert splits.input_shape == (32, 32, 3) and splits.num_classes == 100
    np.testing.assert_allclose(splits.x_test, (arrays["x_test"] / np.float32(255) - mean) / std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(splits.x_train, (arrays["x_train"][splits.train_index] / np.float32(255) - mean) / std,
                               rtol=1e-5, atol=1e-6)


def test_the_kd_recipe_is_the_protocol_for_the_six_published_pairs():
    config = load_ablation_config(EXPERIMENTS / "cifar100_kd.toml")
    assert config.dataset == "cifar100"
    assert [pair.name for pair in config.pairs] == list(PAIRS)
    for label, one in config.for_each_pool():
        teacher, student = PAIRS[label]
        assert one.student.arch == student and one.strategies == ("none", f"single:{teacher}")
        assert one.train.alpha == 0.1 and one.train.temperature == 4.0 and one.train.epochs == 240
        assert {key: getattr(one.train, key) for key in PROTOCOL} == PROTOCOL
    spec = load_pool_spec(config.pool)
    assert {t.name: t.model.arch for t in spec.teachers} == {t: t for t, _ in PAIRS.values()}
    for teacher in spec.teachers:
        assert teacher.training.epochs == 240
        assert {key: getattr(teacher.training.train, key) for key in PROTOCOL} == PROTOCOL


def test_the_multi_teacher_recipe_runs_every_fusion_best_subset_and_rl():
    config = load_ablation_config(EXPERIMENTS / "cifar100_multi_teacher.toml")
    assert config.student.arch == "resnet8x4" and not config.pairs
    assert {"uniform", "weighted", "confidence", "ebkd", "ca_mkd", "ae_kd", "mtkd_rl", "best_subset",
            "rl", "none", "single:*"} <= set(config.strategies)
    assert {key: getattr(config.train, key) for key in PROTOCOL} == PROTOCOL
    assert [t.model.arch for t in load_pool_spec(config.pool).teachers] == ["resnet32x4", "wrn_40_2", "vgg13",
                                                                           "resnet56"]


def test_pairs_are_checked_and_filtered():
    base = {"dataset": "mnist1d", "strategies": ["none"],
            "pairs": [{"name": "a", "student": {"arch": "mlp"}, "strategies": ["none", "uniform"],
                       "train": {"learning_rate": 0.01}},
                      {"name": "b", "student": {"arch": "cnn1d"}}]}
    config = ablation_config_from_dict(base)
    (a_label, a), (b_label, b) = config.for_each_pool()
    assert (a_label, a.student.arch, a.strategies, a.train.learning_rate) == ("a", "mlp", ("none", "uniform"), 0.01)
    assert (b_label, b.student.arch, b.strategies, b.train.learning_rate) == ("b", "cnn1d", ("none",), 1e-3)
    only = config.only(["uniform"])
    assert [(p.name, p.strategies) for p in only.pairs] == [("a", ("uniform",))]
    assert AblationConfig.from_dict(config.to_dict()).pairs == config.pairs
    for change, message in [
        ({"pairs": [{"name": "a", "student": {"arch": "mlp"}}] * 2}, "pairs named twice: a"),
        ({"pairs": [{"name": "a"}]}, "needs `name` and `student`"),
        ({"pairs": [{"name": "a", "student": {"arch": "mlp"}, "train": {"epochz": 3}}]}, "unknown key"),
        ({"pairs": [{"name": "a", "student": {"arch": "mlp"}, "train": {"lr_milestones": "x"}}]}, "lr_milestones"),
        ({"pools": ["default"]}, "either pairs or pools"),
        ({"teacher_epochs": 0}, "teacher_epochs must be at least 1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            ablation_config_from_dict({**base, **change})
    with pytest.raises(ConfigError, match="no pair lists strategy ae_kd"):
        config.only(["ae_kd"])


def test_a_pytorch_checkpoint_imports_as_a_pool_with_its_logits(cifar_dir, tmp_path, capsys):
    """`mtkd teachers import`: a reference network with random weights, saved as the published
    checkpoints are ({"model": state_dict}), becomes a pool whose cached logits on the data set
    equal PyTorch's eval-mode forward on the same normalised images; bad files fail in one line
    and leave no folder."""
    torch = pytest.importorskip("torch")
    from mtkd.cli.main import main
    from mtkd.models.cifar.torch_reference import build_torch_model
    from mtkd.teachers import load_pool

    torch.manual_seed(0)
    model = build_torch_model("resnet8")
    with torch.no_grad():  # running statistics away from their start, so eval mode shows
        model(torch.randn(16, 3, 32, 32))
    torch.save({"model": model.state_dict(), "epoch": 240}, tmp_path / "resnet8.pth")
    data = ["--dataset", "cifar100", "--data-dir", cifar_dir]
    assert main(["teachers", "import", *data, "--arch", "resnet8", "--torch", str(tmp_path / "resnet8.pth"),
                 "--name", "r8", "--out", str(tmp_path / "pool")]) == 0
    splits = load_dataset("cifar100", data_dir=cifar_dir)
    pool = load_pool(tmp_path / "pool", splits)
    logits = np.asarray(pool.logits(splits)["test"])[0]
    with torch.no_grad():
        want = model.eval()(torch.from_numpy(splits.x_test).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(logits, want, rtol=0, atol=1e-4)
    assert pool.names == ["r8"]
    assert pool.test_accuracy[0] == pytest.approx(float(np.mean(want.argmax(-1) == splits.y_test)))

    bad = model.state_dict()
    bad["fc.weight"] = bad["fc.weight"][:, :10]
    torch.save(bad, tmp_path / "bad.pth")
    capsys.readouterr()
    for arch, name in (("resnet8", "bad.pth"), ("resnet14", "resnet8.pth"), ("mlp", "resnet8.pth")):
        assert main(["teachers", "import", *data, "--arch", arch, "--torch", str(tmp_path / name),
                     "--out", str(tmp_path / "refused")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len([line for line in err if line.startswith("mtkd: error")]) == 1
        assert not (tmp_path / "refused").exists()
    assert main(["teachers", "import", *data, "--arch", "resnet8", "--torch", str(tmp_path / "bad.pth"),
                 "--out", str(tmp_path / "refused")]) == 2
    assert "'fc.weight' has shape (100, 10); resnet8 needs (100, 64)" in capsys.readouterr().err


def test_rows_that_cannot_carry_batchnorm_are_refused_before_the_first_row(cifar_dir):
    from mtkd.ablation.run import check_running_stats

    splits = load_dataset("cifar100", data_dir=cifar_dir)
    config = ablation_config_from_dict({"dataset": "cifar100", "strategies": ["uniform", "byot"],
                                        "student": {"arch": "resnet8"}})
    with pytest.raises(ConfigError, match="model 'resnet8' keeps BatchNorm running statistics, which BYOT"):
        check_running_stats(config, ["uniform", "byot"], splits)
    check_running_stats(config, ["uniform", "best_subset", "rl", "single:a"], splits)  # fit carries them
    plain = ablation_config_from_dict({"dataset": "cifar100", "strategies": ["dml"], "student": {"arch": "cnn2d"}})
    check_running_stats(plain, ["dml"], splits)  # no statistics, nothing to refuse
