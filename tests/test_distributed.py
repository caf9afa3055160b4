"""Multi-process runs (`mtkd.distributed`): two processes on 127.0.0.1, each with 2 forced host
devices, run the same `mtkd distill` of 3 seeds (padded to 4, one per device; bitwise the numbers
of one process with 4 forced devices) and `mtkd ablate` (per seed the results of a one-device
run, its joint selector's row and policy included); only process 0 writes; a process that dies
makes the other exit non-zero within a minute; the episodic selector procedure is refused."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from conftest import SMALL_POOL_SPEC, metrics_without_times
from mtkd.distributed import DistributedConfig
from mtkd.errors import ConfigError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# `mtkd` with a Python audit hook that lists, in AUDIT_FILE, every path it opens for writing,
# creates, renames or removes (files Orbax writes from C++ for its multi-host saves are not seen).
AUDITED_MTKD = """
import os, sys
audit = os.open(sys.argv.pop(1), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        mode, flags = args[1], args[2]
        if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (mode is None and flags & WRITING):
            os.write(audit, (os.path.abspath(os.fsdecode(args[0])) + chr(10)).encode())
    elif event in ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree"):
        os.write(audit, (os.path.abspath(os.fsdecode(args[0])) + chr(10)).encode())
sys.addaudithook(hook)
from mtkd.cli.main import main
sys.exit(main())
"""


def mtkd_command(*args: str, audit: Path | None = None) -> list[str]:
    if audit is None:
        return [sys.executable, "-c", "import sys; from mtkd.cli.main import main; sys.exit(main())", *args]
    return [sys.executable, "-c", AUDITED_MTKD, str(audit), *args]


def environment(devices: int) -> dict:
    root = str(Path(__file__).resolve().parent.parent)
    return {**os.environ, "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu",
            "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def start_processes(out: Path, args: list[str], audit_dir: Path | None = None,
                    count: int = 2) -> list[subprocess.Popen]:
    """`count` processes of one `mtkd ARGS --out OUT` run; with `audit_dir`, process i lists what
    it writes in audit_dir/writes{i}.txt."""
    port = free_port()
    return [subprocess.Popen(
        mtkd_command(*args, "--out", str(out), "--coordinator-address", f"127.0.0.1:{port}", "--num-processes",
                     str(count), "--process-id", str(index),
                     audit=audit_dir / f"writes{index}.txt" if audit_dir is not None else None),
        env=environment(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for index in range(count)]


def writes_under(path: Path, audit: Path) -> set[str]:
    return {line for line in audit.read_text().splitlines() if line.startswith(str(path))}


def common_args(data_dir, pool_dir, seeds: int, epochs: int) -> list[str]:
    return ["--data-dir", data_dir, "--teachers", str(pool_dir), "--seeds", str(seeds), "--epochs", str(epochs),
            "--student-options", '{"widths": [16]}', "--strategy", "uniform", "--strategy", "none",
            "--checkpoint-every-epochs", "1"]  # Orbax's multi-host saves, every process taking part


def per_seed(results: dict) -> list:
    return [[row.get(field) for field in ("strategy", "seeds", "best_epoch", "val_accuracy", "test_accuracy")]
            for row in results["rows"]]


def test_config_is_checked_before_any_work():
    with pytest.raises(ConfigError, match="go together"):
        DistributedConfig("127.0.0.1:1234", 2)
    with pytest.raises(ConfigError, match="HOST:PORT"):
        DistributedConfig("localhost", 2, 0)
    with pytest.raises(ConfigError, match=r"--process-id must be in \[0, 2\)"):
        DistributedConfig("127.0.0.1:1234", 2, 2)
    assert not DistributedConfig().enabled and DistributedConfig("h:1", 1, 0).enabled


def test_two_processes_match_four_devices_bitwise_and_only_process_zero_writes(data_dir, tiny_pool_dir, tmp_path):
    # 3 seeds over the 4 devices of 2 processes: padded with a copy of seed 2, which is dropped.
    args = common_args(data_dir, tiny_pool_dir, seeds=3, epochs=2)
    processes = start_processes(tmp_path / "run", ["distill", *args], audit_dir=tmp_path)
    outputs = [process.communicate(timeout=400) for process in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    # One process with 4 forced devices: 3 of them used, one seed per device as in the two-process run.
    single = subprocess.run(mtkd_command("distill", *args, "--out", str(tmp_path / "single")),
                            env=environment(4), capture_output=True, text=True, timeout=400)
    assert single.returncode == 0, single.stderr[-3000:]

    run = tmp_path / "run"
    # Process 1 writes nothing of its own: results, metrics, run folder and plain files are
    # process 0's; only Orbax's multi-host checkpoint saves involve it (every process writes its
    # own shards and their metadata).
    own = writes_under(run, tmp_path / "writes1.txt")
    assert {path for path in own if not path.startswith(str(run / "checkpoints"))} == set()
    assert all("process_1" in path or "ocdbt" in path for path in own), own  # Orbax's per-process parts
    assert {str(run / "results.json.tmp"), str(run / "metrics" / "uniform.jsonl")} <= writes_under(
        run, tmp_path / "writes0.txt")
    assert "student strategy" in outputs[0][0] and "student strategy" not in outputs[1][0]
    multi = json.loads((run / "results.json").read_text())
    one = json.loads((tmp_path / "single" / "results.json").read_text())
    assert (multi["devices"], multi["processes"], multi["padded_seeds"]) == (4, 2, 1)
    assert (one["devices"], one["processes"], one["padded_seeds"]) == (3, 1, 0)
    assert len(multi["rows"]) == 2 and [row["seeds"] for row in multi["rows"]] == [[0, 1, 2]] * 2
    assert "padded with a copy of the last seed" in outputs[0][1]
    assert per_seed(multi) == per_seed(one)
    # Processes add no rounding of their own: every epoch's losses and accuracies, bitwise.
    for name in ("uniform", "none"):
        assert metrics_without_times(run / "metrics" / f"{name}.jsonl") == metrics_without_times(
            tmp_path / "single" / "metrics" / f"{name}.jsonl")
    metrics = [json.loads(line) for line in (run / "metrics" / "uniform.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in metrics] == [1, 2] and {len(line["val_accuracy"]) for line in metrics} == {3}


def test_a_dead_process_stops_the_other_within_a_minute(data_dir, tiny_pool_dir, tmp_path):
    processes = start_processes(tmp_path / "run", ["distill", *common_args(data_dir, tiny_pool_dir, 4, 100000)])
    survivor, victim = processes
    try:
        metrics = tmp_path / "run" / "metrics" / "uniform.jsonl"
        deadline = time.monotonic() + 300
        while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 2):  # both are training
            assert time.monotonic() < deadline and victim.poll() is None and survivor.poll() is None
            time.sleep(0.5)
        victim.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        _, err = survivor.communicate(timeout=120)
        waited = time.monotonic() - killed
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert survivor.returncode != 0
    assert waited < 60, waited
    assert "another task died" in err or "unhealthy" in err, err[-2000:]


def ablation_file(tmp_path: Path, data_dir, pool_dir, strategies: list[str], pool: str | None = None,
                  name: str = "ablation.toml") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([
        'dataset = "mnist1d"', f'data_dir = "{data_dir}"', f'pool_dir = "{pool_dir}"', "seeds = 4",
        *([f'pool = "{pool}"'] if pool else []),
        f"strategies = {json.dumps(strategies)}",
        "[student]", 'arch = "mlp"', "options = { widths = [16] }",
        "[train]", "epochs = 2", "batch_size = 256"]) + "\n")
    return path


def test_ablation_on_two_processes_matches_one_device(data_dir, tmp_path):
    # The two processes train the teacher pool from its spec together (process 0 writes it) and
    # prepare their own data set (process 0 does, the other waits); the one-device run then reuses
    # that pool, so both distil from the same teachers.
    (tmp_path / "pool.toml").write_text(SMALL_POOL_SPEC)
    strategies = ["uniform", "dml", "rl"]
    two = ablation_file(tmp_path, tmp_path / "tfds", tmp_path / "pool", strategies, tmp_path / "pool.toml", "two.toml")
    one = ablation_file(tmp_path, data_dir, tmp_path / "pool", strategies, tmp_path / "pool.toml", "one.toml")
    runs = {}
    processes = start_processes(tmp_path / "two", ["ablate", "--config", str(two)])
    for process in processes:
        _, err = process.communicate(timeout=400)
        assert process.returncode == 0, err[-3000:]
    runs["two"] = json.loads((tmp_path / "two" / "results.json").read_text())
    done = subprocess.run(mtkd_command("ablate", "--config", str(one), "--out", str(tmp_path / "one")),
                          env=environment(1), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"reusing the teacher pool in {tmp_path / 'pool'}" in done.stderr  # its checksums verified on load
    runs["one"] = json.loads((tmp_path / "one" / "results.json").read_text())
    assert [teacher["name"] for teacher in json.loads((tmp_path / "pool" / "pool.json").read_text())["teachers"]] == [
        "small", "wide"]
    assert [(r["devices"], r["processes"]) for r in runs.values()] == [(4, 2), (1, 1)]
    # Per seed (the fusion row, DML's peers and mean row, the joint selector's row): chosen epochs
    # and accuracies.
    assert per_seed(runs["two"]) == per_seed(runs["one"])
    assert len(runs["one"]["rows"]) == 5 and not any("error" in row for row in runs["two"]["rows"])
    # The selector's files, written once: its rounds and its policy, the same as one device's.
    rounds = [(tmp_path / run / "selector" / "rl" / "selector.jsonl").read_text() for run in ("one", "two")]
    # The population selector's generations: the same students, masks and returns on both.
    generations = [[json.loads(line) for line in text.splitlines()] for text in rounds]
    from mtkd.agents.population_config import PopulationConfig

    assert len(generations[1]) == PopulationConfig().generations
    assert [g["teachers"] for g in generations[1]] == [g["teachers"] for g in generations[0]]
    for one, two in zip(*generations):
        assert one["masks"] == two["masks"] and one["seeds"] == two["seeds"]
        np.testing.assert_allclose(two["returns"], one["returns"], atol=1e-5)
        np.testing.assert_allclose(two["next_probability"], one["next_probability"], atol=1e-5)
    from mtkd.agents import load_policy

    policies = [load_policy(tmp_path / run / "selector" / "rl" / "policy")[1] for run in ("one", "two")]
    for want, got in zip(*(jax.tree.leaves(policy) for policy in policies)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def test_a_multi_process_ablation_refuses_only_the_episodic_selector(monkeypatch):
    from mtkd.ablation import run as ablation_run
    from mtkd.ablation.config import ablation_config_from_dict

    def config(rl):
        return ablation_config_from_dict({"dataset": "mnist1d", "strategies": ["uniform", "rl"], "rl": rl})

    monkeypatch.setattr(ablation_run, "process_count", lambda: 2)
    with pytest.raises(ConfigError, match="episodic.*single process"):
        ablation_run.check_processes(["uniform", "rl"], config({"procedure": "episodic"}))
    ablation_run.check_processes(["uniform", "rl"], config({}))  # the population selector: split like any row
    ablation_run.check_processes(["uniform", "rl"], config({"procedure": "joint"}))
    ablation_run.check_processes(["uniform"], config({"procedure": "episodic"}))  # no rl row
    monkeypatch.setattr(ablation_run, "process_count", lambda: 1)
    ablation_run.check_processes(["uniform", "rl"], config({"procedure": "episodic"}))
