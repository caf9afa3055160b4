"""Exact resume: a command killed with SIGKILL and rerun with --resume writes what an uninterrupted
run writes (every number bitwise, on this CPU); torn checkpoints fall back; reruns without
--resume are refused and change nothing."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import SMALL_POOL_SPEC, metrics_without_times
from mtkd.cli.main import main
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit
from mtkd.errors import OutputExistsError
from mtkd.fusion import StrategyContext, make_strategy
from mtkd.models import ModelSpec
from mtkd.run_checkpoints import CheckpointConfig, EpochCheckpoints
from mtkd.runs import claim_output_dir, differing_keys

COMMAND = [sys.executable, "-c", "import sys; from mtkd.cli.main import main; sys.exit(main())"]
# Wall-clock fields and where and when a run was made: the only ones a resumed run may not reproduce.
TIMINGS = {"seconds", "final_seconds", "provenance"}


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(COMMAND + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "JAX_PLATFORMS": "cpu"})


def finish(args: list[str]) -> None:
    """Runs the command to its end in this process (its compiled programs are cached on disk for
    the subprocesses, which is what keeps these tests short)."""
    assert main(args) == 0


def saved_steps(loop: Path) -> list[int]:
    """Finished checkpoints of one loop (Orbax renames a step's folder into place when complete)."""
    return sorted(int(p.name) for p in loop.iterdir() if p.name.isdigit()) if loop.is_dir() else []


def kill_in(args: list[str], loop: Path, timeout: float = 300) -> None:
    """Starts the command and SIGKILLs it as soon as `loop` holds a checkpoint, i.e. in the middle of
    that loop; then checks the kill did land there (the loop was not finished)."""
    process = start(args)
    deadline = time.monotonic() + timeout
    while not saved_steps(loop):
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {loop} had a checkpoint:\n{process.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, f"no checkpoint in {loop} after {timeout}s"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert saved_steps(loop), "the loop finished before the kill: the test did not interrupt it"


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def assert_same_outputs(reference: Path, resumed: Path, files: list[str]) -> None:
    """results.json field by field (floats exactly, timings and the paths of --out aside), every
    other file byte for byte."""
    want = without_timings(json.loads((reference / "results.json").read_text().replace(str(reference), "OUT")))
    got = without_timings(json.loads((resumed / "results.json").read_text().replace(str(resumed), "OUT")))
    assert got == want
    for name in files:
        if name.endswith(".jsonl") and (name.startswith("metrics") or "/candidates/" in name):  # wall_time aside
            assert metrics_without_times(resumed / name) == metrics_without_times(reference / name), name
        elif name.endswith(".csv"):  # its seconds column aside
            assert csv_without_seconds(resumed / name) == csv_without_seconds(reference / name), name
        else:
            assert (resumed / name).read_bytes() == (reference / name).read_bytes(), name


def csv_without_seconds(path: Path) -> list[list[str]]:
    import csv

    table = list(csv.reader(path.read_text().splitlines()))
    column = table[0].index("seconds")
    return [line[:column] + line[column + 1:] for line in table]


def metrics_files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in (out / "metrics").glob("*.jsonl"))


def test_ablation_killed_in_dml_and_in_the_selector_resumes_exactly(
        data_dir, tiny_pool_dir, tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(f"""
dataset = "mnist1d"
data_dir = "{data_dir}"
pool_dir = "{tiny_pool_dir}"
seeds = 2
strategies = ["uniform", "dml", "rl"]
[student]
arch = "mlp"
options = {{ widths = [16] }}
[train]
epochs = 6
batch_size = 256
[rl]
population = 5
generations = 2
horizon = 6
[checkpoint]
every_epochs = 1
""")
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    finish(["ablate", "--config", str(config), "--out", str(reference)])
    args = ["ablate", "--config", str(config), "--out", str(resumed)]
    # (A kill inside a fusion strategy's loop is `test_distill_and_teachers_train_killed_resume_exactly`'s.)
    kill_in(args, resumed / "checkpoints" / "dml")
    # The finished strategies are not rerun: uniform's row comes from the checkpointed list.
    assert [r["strategy"] for r in json.loads((resumed / "results.json").read_text())["rows"]] == ["uniform"]
    # Inside the population's second generation (the first is kept in selector/generations.json),
    # then inside the reported students' second final candidate (the first, finished, is trained
    # again on resume: its checkpoints went when it was done).
    kill_in(args + ["--resume"], resumed / "checkpoints" / "population" / "generation_2")
    kill_in(args + ["--resume"], resumed / "checkpoints" / "rl.all.ae_kd")
    capsys.readouterr()
    finish(args + ["--resume"])
    log = capsys.readouterr().err
    assert "uniform: finished before" in log and "dml: finished before" in log
    assert_same_outputs(reference, resumed, ["results.csv", "results.md", "selector/rl/selector.jsonl",
                                             "selector/rl/candidates/rl.all.ae_kd.jsonl",
                                             "validation_curves.png", "final_accuracy.png",
                                             "selection_frequency.png"] + metrics_files(reference))
    # Only what a later resume needs is left: the list of finished strategies, no loop checkpoints.
    assert [p.name for p in (resumed / "checkpoints").iterdir()] == ["finished.json"]


def test_distill_and_teachers_train_killed_resume_exactly(data_dir, tiny_pool_dir, tmp_path):
    args = ["distill", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir), "--strategy", "uniform",
            "--strategy", "confidence", "--seeds", "2", "--epochs", "8", "--student-options", '{"widths": [16]}',
            "--checkpoint-every-epochs", "1", "--out"]
    finish(args + [str(tmp_path / "distill_ref")])
    kill_in(args + [str(tmp_path / "distill")], tmp_path / "distill" / "checkpoints" / "confidence")
    finish(args + [str(tmp_path / "distill"), "--resume"])
    assert_same_outputs(tmp_path / "distill_ref", tmp_path / "distill", metrics_files(tmp_path / "distill_ref"))
    assert not (tmp_path / "distill" / "checkpoints").exists()

    spec = tmp_path / "pool.toml"
    spec.write_text(SMALL_POOL_SPEC)
    args = ["teachers", "train", "--data-dir", data_dir, "--pool", str(spec), "--checkpoint-every-epochs", "1",
            "--out"]
    finish(args + [str(tmp_path / "pool_ref")])
    kill_in(args + [str(tmp_path / "pool")], tmp_path / "pool" / "checkpoints" / "wide")
    finish(args + [str(tmp_path / "pool"), "--resume"])
    want = json.loads((tmp_path / "pool_ref" / "pool.json").read_text())
    got = json.loads((tmp_path / "pool" / "pool.json").read_text())
    assert got["teachers"] == want["teachers"]  # accuracies, best epochs and parameter checksums
    assert not (tmp_path / "pool" / "checkpoints").exists()


def tiny_fit(mnist1d, epochs, checkpoints=None, metrics_path=None):
    train = SplitArrays(jnp.asarray(mnist1d.x_train[:1024]), jnp.asarray(mnist1d.y_train[:1024]))
    val = SplitArrays(jnp.asarray(mnist1d.x_val), jnp.asarray(mnist1d.y_val))
    return fit(ModelSpec("mlp", {"widths": [16]}), mnist1d.input_shape, mnist1d.num_classes, train, val,
               make_strategy("none", StrategyContext((), ())), TrainConfig(epochs=epochs, batch_size=128), [0, 5],
               checkpoints=checkpoints, metrics_path=metrics_path)


def test_a_torn_latest_checkpoint_falls_back_to_the_one_before(mnist1d, tmp_path):
    reference = tiny_fit(mnist1d, 5, metrics_path=tmp_path / "reference.jsonl")
    messages = []
    loop = EpochCheckpoints(tmp_path / "loop", CheckpointConfig(every_epochs=1), messages.append)
    tiny_fit(mnist1d, 5, loop, tmp_path / "resumed.jsonl")
    assert saved_steps(tmp_path / "loop") == [3, 4]  # the newest two; none after the last epoch
    # Tear the newest one as a kill in the middle of its write would: its array files cut short.
    for path in (tmp_path / "loop" / "4").rglob("*"):
        if path.is_file() and path.stat().st_size > 16:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    lines = (tmp_path / "resumed.jsonl").read_text().splitlines()
    (tmp_path / "resumed.jsonl").write_text("\n".join(lines[:4]) + "\n" + lines[4][:10])  # a torn last line
    loop = EpochCheckpoints(tmp_path / "loop", CheckpointConfig(every_epochs=1), messages.append)
    resumed = tiny_fit(mnist1d, 5, loop, tmp_path / "resumed.jsonl")
    assert any("epoch 4" in m and "unreadable" in m and "the one before" in m for m in messages), messages
    assert resumed.best_epoch == reference.best_epoch and resumed.val_accuracy == reference.val_accuracy
    for got, want in zip(resumed.history, reference.history):
        assert got == want
    np.testing.assert_array_equal(np.asarray(jnp.concatenate([p.ravel() for p in jax_leaves(resumed.params)])),
                                  np.asarray(jnp.concatenate([p.ravel() for p in jax_leaves(reference.params)])))
    assert metrics_without_times(tmp_path / "resumed.jsonl") == metrics_without_times(tmp_path / "reference.jsonl")


def jax_leaves(tree):
    import jax
    return jax.tree.leaves(tree)


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_rerun_without_resume_is_refused_and_changes_nothing(data_dir, tiny_pool_dir, tmp_path, capsys):
    args = ["distill", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir), "--seeds", "1", "--epochs", "2",
            "--student-options", '{"widths": [8]}', "--out", str(tmp_path / "run")]
    assert main(args) == 0
    before = tree_hashes(tmp_path / "run")
    capsys.readouterr()
    assert main(args) == 2
    message = capsys.readouterr().err
    assert "--resume" in message and "--overwrite" in message
    assert main(args[:-4] + ["--epochs", "3", "--out", str(tmp_path / "run"), "--resume"]) == 2
    assert "config.epochs" in capsys.readouterr().err  # the differing key is named
    assert tree_hashes(tmp_path / "run") == before
    # A finished run resumed is left as it is.
    assert main(args + ["--resume"]) == 0
    assert tree_hashes(tmp_path / "run") == before


def test_claiming_an_output_directory(tmp_path):
    signature = {"kind": "distill", "config": {"epochs": 3, "alpha": 0.5}, "seeds": [0]}
    claim_output_dir(tmp_path / "out", signature)
    with pytest.raises(OutputExistsError, match="--resume.*--overwrite"):
        claim_output_dir(tmp_path / "out", signature)
    assert claim_output_dir(tmp_path / "out", signature, resume=True) == tmp_path / "out"
    other = {"kind": "distill", "config": {"epochs": 4, "alpha": 0.5}, "seeds": [0, 1]}
    with pytest.raises(OutputExistsError, match=r"differing key\(s\): config.epochs, seeds"):
        claim_output_dir(tmp_path / "out", other, resume=True)
    (tmp_path / "out" / "results.json").write_text("{}")
    claim_output_dir(tmp_path / "out", other, overwrite=True)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["run.json"]
    assert differing_keys({"a": {"b": 1, "c": [1]}, "d": 1}, {"a": {"b": 2, "c": [1]}, "e": 1}) == ["a.b", "d", "e"]


def test_checkpoint_interval_options_are_checked():
    with pytest.raises(Exception, match="every_epochs must be a whole number >= 1"):
        CheckpointConfig(every_epochs=0)
    with pytest.raises(Exception, match="every_seconds = nan: expected a finite number"):
        CheckpointConfig(every_seconds=float("nan"))
    with pytest.raises(Exception, match=r"\[checkpoint\] has unknown key\(s\): evry_epochs"):
        CheckpointConfig.from_dict({"evry_epochs": 2})


def test_episodic_selector_training_resumes_between_chunks_exactly(tmp_path):
    """Selector training runs as jitted chunks of episodes; a run that finds checkpoints of an
    earlier one (as an interrupted run leaves them) continues from the last and ends with the same
    policy and records."""
    import jax

    from mtkd import envs
    from mtkd.agents import AgentConfig
    from mtkd.agents.procedure import train_selector
    from mtkd.envs.probe import probe_arrays

    env_params = envs.make_env_params(*probe_arrays(seed=0), student={"arch": "mlp", "options": {"widths": [8]}},
                                      batch_size=64, epochs=1, temperature=2.0, learning_rate=3e-3)
    config = AgentConfig(num_envs=2, episodes=3, policy_learning_rate=0.05)
    names = ["a", "b", "c"]
    loop = EpochCheckpoints(tmp_path / "selector", CheckpointConfig(every_epochs=1))
    policy, records = train_selector(env_params, config, 0, names, log=lambda line: None, log_every=2,
                                     checkpoints=loop)
    assert saved_steps(tmp_path / "selector") == [2]  # after each chunk but the last
    lines = []
    resumed_policy, resumed = train_selector(env_params, config, 0, names, log=lines.append, log_every=2,
                                             checkpoints=EpochCheckpoints(tmp_path / "selector"))
    assert "resuming the selector after episode 2/3" in lines[0]
    assert resumed == records and [r["episode"] for r in resumed] == [1, 2, 3]
    for got, want in zip(jax.tree.leaves(resumed_policy), jax.tree.leaves(policy)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_byot_and_the_composite_loss_trainer_resume_exactly(mnist1d, tiny_pool_dir, tmp_path):
    """Both loops run once with a checkpoint after every epoch, then again over the checkpoints
    they left (the newest is the epoch before the last): the second run resumes there and ends
    with the same numbers and metrics file."""
    from mtkd.distill.byot import run_byot
    from mtkd.distill.composite_fit import fit_composite
    from mtkd.distill.loss_config import LossConfig
    from mtkd.teachers import load_pool

    every_epoch = CheckpointConfig(every_epochs=1)
    runs = []
    for attempt in range(2):
        loop = EpochCheckpoints(tmp_path / "byot_loop", every_epoch)
        rows = run_byot(mnist1d, TrainConfig(epochs=3, batch_size=256), [0], metrics_dir=tmp_path / f"byot{attempt}",
                        log=lambda line: None, checkpoints=loop, channels=[8, 8], blocks=0)
        runs.append(without_timings(rows))
    assert runs[0] == runs[1]
    assert metrics_without_times(tmp_path / "byot0" / "byot.jsonl") == metrics_without_times(
        tmp_path / "byot1" / "byot.jsonl")

    pool = load_pool(tiny_pool_dir, mnist1d)
    train = SplitArrays(jnp.asarray(mnist1d.x_train[:1024]), jnp.asarray(mnist1d.y_train[:1024]),
                        pool.logits(mnist1d)["train"][:, :1024])
    val = SplitArrays(jnp.asarray(mnist1d.x_val), jnp.asarray(mnist1d.y_val))
    losses = LossConfig.from_dicts([{"loss": "ce"}, {"loss": "dkd"}])
    results = []
    for attempt in range(2):
        loop = EpochCheckpoints(tmp_path / "composite_loop", every_epoch)
        result = fit_composite(ModelSpec("mlp", {"widths": [16]}), mnist1d.input_shape, mnist1d.num_classes, train, val,
                               make_strategy("uniform", pool.strategy_context()), losses,
                               TrainConfig(epochs=3, batch_size=128), [0, 1], teacher_names=pool.names,
                               metrics_path=tmp_path / f"composite{attempt}.jsonl", checkpoints=loop)
        results.append(result)
        assert saved_steps(tmp_path / "composite_loop") == [1, 2]
    assert results[0].history == results[1].history and results[0].best_epoch == results[1].best_epoch
    for got, want in zip(jax_leaves(results[1].params), jax_leaves(results[0].params)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert metrics_without_times(tmp_path / "composite0.jsonl") == metrics_without_times(tmp_path / "composite1.jsonl")


def run_until(args: list[str], line: str, signals: list[int], timeout: float = 300) -> tuple[int, list[str]]:
    """Starts the command, sends `signals` (one after the other, at once) as soon as a line of its
    stderr contains `line`, and returns its exit code and stderr lines."""
    process = start(args)
    lines, deadline = [], time.monotonic() + timeout
    for text in process.stderr:
        lines.append(text.rstrip("\n"))
        if line in text:
            for signum in signals:
                process.send_signal(signum)
            break
        assert time.monotonic() < deadline, f"no line with {line!r} after {timeout}s"
    else:
        raise AssertionError(f"the run ended before a line with {line!r}:\n" + "\n".join(lines[-30:]))
    lines += [text.rstrip("\n") for text in process.stderr]
    return process.wait(), lines


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_at_the_next_epoch_says_how_to_resume_and_resumes_exactly(
        data_dir, tiny_pool_dir, tmp_path, signum, code):
    """Checkpoints only every 10 minutes: the one a resume continues from is the signal's. The
    signal lands as the second strategy compiles or trains, where a traceback (or, in an XLA
    compilation, a segfault) used to end the run with nothing saved for it."""
    config = tmp_path / "tiny.toml"
    config.write_text("\n".join([
        'dataset = "mnist1d"', f'data_dir = "{data_dir}"', f'pool_dir = "{tiny_pool_dir}"', "seeds = 2",
        'strategies = ["uniform", "confidence"]', "[student]", 'arch = "mlp"', "options = { widths = [16] }",
        "[train]", "epochs = 40", "batch_size = 256", "[checkpoint]", "every_seconds = 600"]) + "\n")
    args = ["ablate", "--config", str(config), "--out"]
    finish(args + [str(tmp_path / "reference")])
    returncode, lines = run_until(args + [str(tmp_path / "run")], "[2/2] confidence", [signum])
    assert returncode == code, lines[-20:]
    assert [entry for entry in lines if entry.startswith("mtkd: stopped")] == [lines[-1]], lines[-20:]
    assert "Traceback" not in "\n".join(lines)
    epoch = int(lines[-1].split("at epoch ")[1].split(" of ")[0])
    assert lines[-1] == f"mtkd: stopped at epoch {epoch} of 40 of confidence; rerun the same command with --resume"
    assert saved_steps(tmp_path / "run" / "checkpoints" / "confidence") == [epoch]
    finish(args + [str(tmp_path / "run"), "--resume"])
    assert_same_outputs(tmp_path / "reference", tmp_path / "run",
                        ["results.csv", "results.md"] + metrics_files(tmp_path / "reference"))


def test_a_second_interrupt_stops_at_once():
    """The first signal only asks for a stop (the run goes on to its epoch boundary); the second
    ends the process there and then, with the same exit code. Two signals sent back to back may
    reach Python as one, so this raises them in turn in a process of its own."""
    script = "\n".join([
        "import signal, sys, time",
        "from mtkd.interrupts import handling_stops, requested",
        "with handling_stops():",
        "    signal.raise_signal(signal.SIGINT)",
        "    assert requested() == signal.SIGINT",
        "    print('asked', flush=True)",
        "    signal.raise_signal(signal.SIGINT)",
        "    time.sleep(30)",
        "    print('still running', flush=True)"])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130 and done.stdout == "asked\n", (done.stdout, done.stderr)
    assert "SIGINT received: stopping at the next epoch boundary" in done.stderr
    assert "SIGINT again: stopping at once" in done.stderr


def test_resume_with_nothing_to_resume_says_so(data_dir, tiny_pool_dir, tmp_path, capsys):
    args = ["distill", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir), "--seeds", "1", "--epochs", "1",
            "--student-options", '{"widths": [8]}', "--out", str(tmp_path / "run"), "--resume"]
    assert main(args) == 0
    assert f"--resume: {tmp_path / 'run'} holds nothing to resume" in capsys.readouterr().err
    assert (tmp_path / "run" / "results.json").is_file()


def test_an_unwritable_out_is_one_line_before_any_work(data_dir, tiny_pool_dir, tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    args = ["distill", "--data-dir", data_dir, "--teachers", str(tiny_pool_dir), "--seeds", "1", "--epochs", "1",
            "--out", str(tmp_path / "a_file" / "run")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mtkd: error: cannot write the output directory {tmp_path / 'a_file' / 'run'}: Not a directory"]
