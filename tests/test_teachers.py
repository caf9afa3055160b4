"""Teacher pools: uneven teachers, save/load, checksums, external teachers, bad inputs."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mtkd.errors import CheckpointError, ConfigError, DatasetError, OutputExistsError, UnknownNameError
from mtkd.distill.pool_training import train_pool
from mtkd.teachers import load_pool, load_pool_spec
from mtkd.teachers.spec import pool_spec_from_dict
from mtkd.distill.pool_training import corrupt_labels, teacher_training_data
from mtkd.teachers.spec import TeacherTraining

from conftest import TINY_POOL


def test_pool_manifest_and_stacked_logits(tiny_pool_dir, mnist1d):
    manifest = json.loads((tiny_pool_dir / "pool.json").read_text())
    assert [t["name"] for t in manifest["teachers"]] == ["mlp_a", "mlp_b", "cnn"]
    for entry in manifest["teachers"]:
        assert entry["num_classes"] == 10 and entry["dataset"] == "mnist1d"
        assert 0.0 <= entry["val_accuracy"] <= 1.0 and entry["checksum"].startswith("sha256:")
    pool = load_pool(tiny_pool_dir, mnist1d)
    logits = pool.logits(mnist1d)
    assert logits["train"].shape == (3, mnist1d.num_train, 10)
    assert logits["val"].shape == (3, mnist1d.num_val, 10)
    # The recorded validation accuracy is that of the cached validation logits.
    recomputed = np.mean(np.argmax(np.asarray(logits["val"]), -1) == mnist1d.y_val, axis=-1)
    np.testing.assert_allclose(recomputed, pool.val_accuracy, atol=1e-6)
    # The two MLPs were stacked and vmapped: each must equal its own forward pass alone.
    graphdef, params = pool._models["mlp_b"]
    from mtkd.distill.steps import apply_model
    alone = apply_model(graphdef, params, mnist1d.x_val)[0]
    np.testing.assert_allclose(np.asarray(logits["val"][1]), np.asarray(alone), rtol=1e-5, atol=1e-5)


def test_save_and_load_give_bit_identical_logits(tiny_pool_dir, mnist1d):
    first = load_pool(tiny_pool_dir, mnist1d).logits(mnist1d)
    second = load_pool(tiny_pool_dir, mnist1d).logits(mnist1d)
    for split in ("train", "val", "test"):
        assert np.array_equal(np.asarray(first[split]), np.asarray(second[split]))


def _copy_pool(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_checksum_catches_a_flipped_byte(tiny_pool_dir, mnist1d, tmp_path):
    pool_dir = _copy_pool(tiny_pool_dir, tmp_path / "pool")
    data_files = [p for p in (pool_dir / "teachers" / "mlp_a").rglob("*") if p.is_file() and p.parent.name == "d"]
    target = max(data_files, key=lambda p: p.stat().st_size)
    blob = bytearray(target.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    target.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="mlp_a"):
        load_pool(pool_dir, mnist1d)


def test_truncated_checkpoint_is_reported(tiny_pool_dir, mnist1d, tmp_path):
    pool_dir = _copy_pool(tiny_pool_dir, tmp_path / "pool")
    for path in (pool_dir / "teachers" / "cnn").rglob("*"):
        if path.is_file() and path.parent.name == "d":
            path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(CheckpointError, match="cnn"):
        load_pool(pool_dir, mnist1d)


def test_pool_with_other_class_count_is_refused(tiny_pool_dir, mnist1d, tmp_path):
    pool_dir = _copy_pool(tiny_pool_dir, tmp_path / "pool")
    manifest = json.loads((pool_dir / "pool.json").read_text())
    manifest["num_classes"] = 3
    (pool_dir / "pool.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="3 classes"):
        load_pool(pool_dir, mnist1d)


def test_external_teacher_round_trip_and_bad_files(mnist1d, data_dir, tmp_path):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(mnist1d.num_train_full, 10)).astype(np.float32)
    train[np.arange(train.shape[0]), 0] += 0  # arbitrary logits
    test = rng.normal(size=(mnist1d.num_test, 10)).astype(np.float32)
    np.savez(tmp_path / "good.npz", train=train, test=test)
    spec = pool_spec_from_dict({"teachers": [{"name": "ext", "external": "good.npz"}]}, "ext", base_dir=tmp_path)
    pool = train_pool("mnist1d", spec, tmp_path / "pool", data_dir=data_dir, log=lambda line: None)
    logits = pool.logits(mnist1d)
    np.testing.assert_array_equal(np.asarray(logits["val"][0]), train[mnist1d.val_index])
    np.testing.assert_array_equal(np.asarray(logits["test"][0]), test)
    expected_val = np.mean(np.argmax(train[mnist1d.val_index], -1) == mnist1d.y_val)
    assert pool.val_accuracy[0] == pytest.approx(expected_val)

    np.savez(tmp_path / "rows.npz", train=train[:-1], test=test)
    np.savez(tmp_path / "classes.npz", train=train[:, :9], test=test[:, :9])
    for name, message in (("rows.npz", "rows"), ("classes.npz", "classes")):
        bad = pool_spec_from_dict({"teachers": [{"name": "ext", "external": name}]}, "bad", base_dir=tmp_path)
        with pytest.raises(CheckpointError, match=message):
            train_pool("mnist1d", bad, tmp_path / f"out-{name}", data_dir=data_dir, log=lambda line: None)
        assert not (tmp_path / f"out-{name}").exists()  # refused before anything was written


def test_output_directory_with_another_pool_is_refused(tiny_pool_dir, data_dir):
    before = (tiny_pool_dir / "pool.json").read_bytes()
    other = pool_spec_from_dict({**TINY_POOL, "defaults": {**TINY_POOL["defaults"], "epochs": 4}}, "tiny")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        train_pool("mnist1d", other, tiny_pool_dir, data_dir=data_dir, log=lambda line: None)
    assert (tiny_pool_dir / "pool.json").read_bytes() == before


def test_same_pool_is_reused_not_retrained(tiny_pool_dir, data_dir):
    before = (tiny_pool_dir / "pool.json").stat().st_mtime_ns
    lines = []
    train_pool("mnist1d", pool_spec_from_dict(TINY_POOL, "tiny"), tiny_pool_dir, data_dir=data_dir, log=lines.append)
    assert lines == [f"reusing the teacher pool in {tiny_pool_dir}"]
    assert (tiny_pool_dir / "pool.json").stat().st_mtime_ns == before


def test_uneven_teacher_data_and_corrupted_labels(mnist1d):
    x, y = teacher_training_data(mnist1d, TeacherTraining(data_fraction=0.25, label_noise=0.4, seed=3))
    assert len(y) == round(0.25 * mnist1d.num_train)
    labels = np.arange(1000) % 10
    corrupted = corrupt_labels(labels, 0.3, 10, seed=0)
    changed = corrupted != labels
    assert changed.sum() == 300  # exactly the fraction, and every corrupted label is wrong
    assert np.array_equal(corrupted, corrupt_labels(labels, 0.3, 10, seed=0))


def test_pool_spec_errors(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown pool preset"):
        load_pool_spec("nonexistent")
    with pytest.raises(ConfigError, match="unknown key"):
        pool_spec_from_dict({"teachers": [{"name": "a", "arch": "mlp", "epochz": 3}]}, "x")
    with pytest.raises(ConfigError, match="label_noise"):
        pool_spec_from_dict({"teachers": [{"name": "a", "arch": "mlp", "label_noise": 1.5}]}, "x")
    with pytest.raises(UnknownNameError, match="unknown model"):
        pool_spec_from_dict({"teachers": [{"name": "a", "arch": "vit"}]}, "x")
    (tmp_path / "pool.yaml").write_text("teachers:\n  - name: a\n    arch: mlp\n    epochs: 2\n")
    spec = load_pool_spec(tmp_path / "pool.yaml")
    assert spec.teachers[0].training.epochs == 2
    default = load_pool_spec("default", "mnist1d")
    assert len(default.teachers) >= 4 and len({t.model.arch for t in default.teachers}) >= 3


def test_checkpoint_of_another_architecture_is_refused(tiny_pool_dir, mnist1d, tmp_path):
    pool_dir = _copy_pool(tiny_pool_dir, tmp_path / "pool")
    manifest = json.loads((pool_dir / "pool.json").read_text())
    manifest["teachers"][0]["model"]["options"]["widths"] = [16]  # the checkpoint holds a width-32 MLP
    (pool_dir / "pool.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="does not match the model"):
        load_pool(pool_dir, mnist1d)
