"""TensorBoard event files: every run writes them, and they hold exactly its metrics lines.

The files are read back here with a reader of their own (the TFRecord framing and TensorBoard's
`Event` protocol buffer), not with the library that wrote them."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from mtkd.cli.main import main


def read_events(folder: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} from every event file in `folder`."""
    from tensorboardX.proto import event_pb2

    scalars: dict[str, dict[int, float]] = {}
    for path in folder.glob("events.out.tfevents.*"):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            payload = data[offset + 12: offset + 12 + length]  # after the length and its CRC
            offset += 12 + length + 4  # and the payload's CRC
            event = event_pb2.Event.FromString(payload)
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


def test_a_run_writes_tensorboard_events_equal_to_its_metrics(data_dir, tiny_pool_dir, tmp_path):
    assert main(["distill", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir), "--seeds", "2",
                 "--first-seed", "4", "--epochs", "3", "--student-options", '{"widths": [8]}', "--strategy",
                 "uniform", "--strategy", "random", "--out", str(tmp_path / "run")]) == 0
    for row in ("uniform", "random"):
        lines = [json.loads(l) for l in (tmp_path / "run" / "metrics" / f"{row}.jsonl").read_text().splitlines()]
        events = read_events(tmp_path / "run" / "tensorboard" / row)
        for line in lines:
            epoch = line["epoch"]
            for seed_index, seed in enumerate((4, 5)):
                assert events[f"val_accuracy/seed{seed}"][epoch] == pytest.approx(line["val_accuracy"][seed_index])
                assert events[f"train_loss/seed{seed}"][epoch] == pytest.approx(line["train_loss"][seed_index])
            assert events["val_loss/mean"][epoch] == pytest.approx(np.mean(line["val_loss"]))
        seconds = events["seconds_per_epoch"]
        assert sorted(seconds) == [2, 3] and seconds[3] == pytest.approx(lines[2]["wall_time"] - lines[1]["wall_time"])
    random = read_events(tmp_path / "run" / "tensorboard" / "random")
    last = json.loads((tmp_path / "run" / "metrics" / "random.jsonl").read_text().splitlines()[-1])
    frequency = np.asarray(last["selection"]).reshape(-1, 3).mean(axis=0)
    assert [random[f"selection/{name}"][3] for name in ("mlp_a", "mlp_b", "cnn")] == pytest.approx(frequency.tolist())
