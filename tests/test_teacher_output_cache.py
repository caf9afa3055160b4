"""Teacher logits on disk (`mtkd.teachers.output_cache`): a rerun reads back exactly what a fresh
forward pass gives, anything the logits depend on changes the file's name, and a torn or
mismatched file is computed again."""

import numpy as np
import pytest

from mtkd.teachers import load_pool
from mtkd.teachers.output_cache import cached_outputs, outputs_key
from mtkd.teachers.pool import TeacherPool

SHAPES = {"train": (2, 5, 3), "val": (2, 4, 3)}


def arrays(offset: float = 0.0):
    rng = np.random.default_rng(0)
    return {name: rng.normal(size=shape).astype(np.float32) + offset for name, shape in SHAPES.items()}


class Counting:
    def __init__(self, offset: float = 0.0):
        self.calls, self.offset = 0, offset

    def __call__(self):
        self.calls += 1
        return arrays(self.offset)


def test_pool_logits_read_back_bitwise_without_a_forward_pass(tiny_pool_dir, mnist1d, monkeypatch, tmp_path):
    monkeypatch.setenv("MTKD_TEACHER_CACHE", "off")
    fresh = load_pool(tiny_pool_dir, mnist1d).logits(mnist1d)
    monkeypatch.setenv("MTKD_TEACHER_CACHE", str(tmp_path / "cache"))
    first = load_pool(tiny_pool_dir, mnist1d).logits(mnist1d)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1

    def no_forward_pass(self, splits):
        raise AssertionError("the teachers ran again")

    monkeypatch.setattr(TeacherPool, "_compute_logits", no_forward_pass)
    second = load_pool(tiny_pool_dir, mnist1d).logits(mnist1d)
    for split in ("train", "val", "test"):
        assert np.array_equal(np.asarray(first[split]), np.asarray(fresh[split]))
        assert np.array_equal(np.asarray(second[split]), np.asarray(fresh[split]))
        assert second[split].dtype == fresh[split].dtype


def test_key_follows_everything_the_logits_depend_on():
    teachers = [{"name": "a", "checksum": "sha256:00", "model": {"arch": "mlp"}}]
    inputs = {"train": np.zeros((4, 3), np.float32), "val": np.ones((2, 3), np.float32)}
    indices = {"train": np.arange(4), "val": np.arange(4, 6)}
    base = outputs_key(teachers, inputs, indices, {"batch": 1024})
    assert base == outputs_key([dict(t) for t in teachers], {k: v.copy() for k, v in inputs.items()}, indices,
                               {"batch": 1024})
    changed_input = {**inputs, "val": inputs["val"].copy()}
    changed_input["val"][1, 2] = np.nextafter(np.float32(1), np.float32(2))
    variants = [
        outputs_key([{**teachers[0], "checksum": "sha256:01"}], inputs, indices, {"batch": 1024}),
        outputs_key(teachers, changed_input, indices, {"batch": 1024}),
        outputs_key(teachers, inputs, {**indices, "val": np.arange(5, 7)}, {"batch": 1024}),
        outputs_key(teachers, inputs, indices, {"batch": 512}),
        outputs_key(teachers, {**inputs, "val": inputs["val"].astype(np.float64)}, indices, {"batch": 1024}),
    ]
    assert len({base, *variants}) == 1 + len(variants)


def test_stored_arrays_are_reused_and_bad_files_recomputed(monkeypatch, tmp_path):
    monkeypatch.setenv("MTKD_TEACHER_CACHE", str(tmp_path))
    compute = Counting()
    first = cached_outputs("k", SHAPES, compute)
    again = cached_outputs("k", SHAPES, compute)
    assert compute.calls == 1
    for name in SHAPES:
        assert np.array_equal(first[name], again[name]) and np.array_equal(first[name], arrays()[name])

    path = tmp_path / "k.npz"
    blob = bytearray(path.read_bytes())
    blob[blob.find(arrays()["val"].tobytes()) + 5] ^= 0xFF  # a flipped bit of data: the zip member's CRC fails
    path.write_bytes(bytes(blob))
    assert np.array_equal(cached_outputs("k", SHAPES, compute)["val"], arrays()["val"])
    assert compute.calls == 2
    path.write_bytes(path.read_bytes()[:100])  # torn
    cached_outputs("k", SHAPES, compute)
    assert compute.calls == 3
    other = Counting(offset=1.0)  # a file whose arrays have other shapes than expected is not used
    wider = {name: (shape[0], shape[1], shape[2] + 1) for name, shape in SHAPES.items()}
    assert np.array_equal(cached_outputs("k", wider, other)["val"], arrays(1.0)["val"])
    assert other.calls == 1
    assert not list(tmp_path.glob("*.partial"))


def test_off_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("MTKD_TEACHER_CACHE", "off")
    monkeypatch.setenv("HOME", str(tmp_path))
    compute = Counting()
    cached_outputs("k", SHAPES, compute)
    cached_outputs("k", SHAPES, compute)
    assert compute.calls == 2 and not list(tmp_path.rglob("*"))
