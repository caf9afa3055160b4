"""The API's runs: `distill`, `select`, `ablate` and `train_teachers`, each what its command does
(the commands parse their flags into these arguments and call them). Every argument is checked
before anything is written; each run claims `out` with the signature `--resume` compares."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from mtkd.api.inputs import import_arrays, logits_pool, student_spec
from mtkd.api.result import RunResult
from mtkd.checkpoint_config import CheckpointConfig
from mtkd.errors import ConfigError
from mtkd.seeds import seed_list
from mtkd.train_config import TrainConfig


@dataclasses.dataclass(frozen=True)
class DataChoice:
    """A data set by name plus how its validation rows are chosen (the `--data-dir`,
    `--val-fraction`, `--split-seed`, `--val-indices` and `--val-split` of every command)."""

    dataset: str
    data_dir: str | None = None
    val_fraction: float = 0.1
    split_seed: int = 0
    val_indices: str | None = None
    val_split: str | None = None

    def load(self):
        from mtkd.data import load_dataset

        return load_dataset(self.dataset, data_dir=self.data_dir, val_fraction=self.val_fraction,
                            split_seed=self.split_seed, val_indices=self.val_indices, val_split=self.val_split)

    def signature(self, splits) -> dict[str, Any]:
        from mtkd.data.splits import validation_checksum

        return {"val_fraction": self.val_fraction, "split_seed": self.split_seed,
                **({"validation": validation_checksum(splits)} if self.val_indices or self.val_split else {})}


def choose_data(data: str | Mapping, data_dir=None, val_fraction: float = 0.1, split_seed: int = 0,
                val_indices=None, val_split: str | None = None) -> DataChoice:
    """A data set name as it is; NumPy arrays imported (`import_arrays`), their x_val/y_val, if
    given, becoming the validation split."""
    data_dir = os.fspath(data_dir) if data_dir is not None else None
    if isinstance(data, Mapping):
        dataset = import_arrays(data, data_dir=data_dir)
        if "x_val" in data and val_split is None and val_indices is None:
            val_split = "validation"
    elif isinstance(data, str):
        dataset = data
    else:
        raise ConfigError(f"data is a data set name or a mapping of NumPy arrays, got {type(data).__name__}")
    return DataChoice(dataset, data_dir, val_fraction, split_seed,
                      os.fspath(val_indices) if val_indices is not None else None, val_split)


def choose_teachers(teachers, choice: DataChoice) -> str | None:
    """The pool directory a run names (None: the data set's default pool): a directory as given,
    or each teacher's logits made into an external pool (`logits_pool`), built here."""
    if teachers is None or isinstance(teachers, str):
        return teachers or None  # "" (an empty --teachers) is the default pool, as it always was
    if isinstance(teachers, os.PathLike):
        return os.fspath(teachers)
    if not isinstance(teachers, Mapping):
        raise ConfigError(f"teachers are a pool directory, None (the default pool) or a mapping of teacher names to "
                          f"logits, got {type(teachers).__name__}")
    from mtkd.distill.pool_training import train_pool
    from mtkd.teachers.spec import PoolSpec, TeacherSpec

    settings = f"{choice.val_fraction}|{choice.split_seed}|{choice.val_indices}|{choice.val_split}"
    pool_dir, files = logits_pool(choice.dataset, teachers, choice.val_split is not None, settings)
    spec = PoolSpec("logits", tuple(TeacherSpec(name, external=path) for name, path in files.items()))
    train_pool(choice.dataset, spec, pool_dir, data_dir=choice.data_dir, val_fraction=choice.val_fraction,
               split_seed=choice.split_seed, resume=True, announce=False, val_indices=choice.val_indices,
               val_split=choice.val_split)
    return pool_dir


def load_pool(choice: DataChoice, teachers: str | None, splits):
    """The run's pool: the one in `teachers`, or the data set's default pool (trained and cached
    on first use), checked against the splits."""
    from mtkd.distill.pool_training import pool_for

    spec, directory = ("default", None) if teachers is None else (None, teachers)
    return pool_for(splits, spec, directory, choice.data_dir, choice.val_fraction, choice.split_seed,
                    choice.val_indices, choice.val_split)


def train_config(train: TrainConfig | None, options: Mapping[str, Any]) -> TrainConfig:
    """`train` (default: TrainConfig()) with `options` (its fields by name, e.g. epochs=30); an
    unknown keyword is named with the known ones."""
    if train is not None and not isinstance(train, TrainConfig):
        raise ConfigError(f"train is a TrainConfig, got {type(train).__name__}")
    base = train or TrainConfig()
    if not options:
        return base
    known = [field.name for field in dataclasses.fields(TrainConfig)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown argument(s) {', '.join(unknown)}; the training settings are {', '.join(known)}")
    return base.replace(**options)


def names(value: Any, what: str) -> list[str]:
    """A list of strategy names; one string is refused rather than read letter by letter."""
    if isinstance(value, str) or not all(isinstance(name, str) for name in value):
        raise ConfigError(f"{what} is a list of strategy names, e.g. [{value!r}], got {value!r}")
    return list(value)


def check_inputs() -> None:
    """What every run checks first, whatever its arguments: the trackers asked for."""
    from mtkd.tracking import check_trackers

    check_trackers()


def start_distributed(distributed) -> None:
    from mtkd import distributed as processes

    processes.start(distributed or processes.DistributedConfig())


def distill(student: Any = "mlp", data: str | Mapping = "mnist1d", teachers: Any = None, *,
            strategies: Sequence[str] = ("uniform",), seeds: int | Sequence[int] = 3, out: str | os.PathLike,
            student_options: Mapping[str, Any] | None = None, train: TrainConfig | None = None,
            policy: str | None = None, greedy: bool = False, losses: str | os.PathLike | None = None,
            data_dir=None, val_fraction: float = 0.1, split_seed: int = 0, val_indices=None,
            val_split: str | None = None, devices: int | None = None,
            checkpoint: CheckpointConfig = CheckpointConfig(), overwrite: bool = False, resume: bool = False,
            distributed=None, **train_options) -> RunResult:
    """`mtkd distill`: the student under each strategy over `seeds`, each seed's epoch chosen on
    validation, test accuracy reported; results.json, metrics/ and tensorboard/ in `out`.
    `train_options` are TrainConfig fields (epochs=30, learning_rate=1e-3, ...)."""
    from mtkd import distributed as processes
    from mtkd.devices import seed_placement
    from mtkd.distill.experiment import bind_pool_loss, build_strategies, read_loss_file, run_strategies, teacher_rows
    from mtkd.distill.results import write_results
    from mtkd.models import abstract_model
    from mtkd.progress import stderr_line
    from mtkd.run_checkpoints import start_run
    from mtkd.runs import refuse_duplicates

    check_inputs()
    strategies = names(strategies, "strategies")
    refuse_duplicates(strategies, "--strategy")
    config = train_config(train, train_options)
    student = student_spec(student, student_options)
    seeds = seed_list(seeds)
    start_distributed(distributed)  # before any other JAX work
    placement = seed_placement(len(seeds), devices)
    choice = choose_data(data, data_dir, val_fraction, split_seed, val_indices, val_split)
    splits = choice.load()
    teachers = choose_teachers(teachers, choice)
    pool = None
    if teachers is not None or any(name != "none" for name in strategies):
        pool = load_pool(choice, teachers, splits)
    abstract_model(student, splits.input_shape, splits.num_classes)  # a student that cannot be built fails here
    built = build_strategies(strategies, pool, {"policy": policy, "greedy": greedy})
    losses_file = os.fspath(losses) if losses is not None else None
    composite = read_loss_file(losses_file) if losses_file else None
    if composite is not None:
        bind_pool_loss(composite, pool, splits, student)  # layers and shapes checked before anything is written
    signature = {"kind": "distill", "dataset": choice.dataset, "teachers": teachers, "strategies": strategies,
                 "student": student.to_dict(), "config": config.signature(), "seeds": seeds,
                 "policy": policy, **choice.signature(splits),
                 "losses": composite.to_dicts() if composite is not None else None, "devices": placement.devices}
    out, checkpoints = start_run(out, signature, overwrite=overwrite, resume=resume, config=checkpoint,
                                 log=stderr_line)
    if checkpoints is None:
        return finished(out, [], [], reused=True)
    if placement.devices > 1:
        stderr_line(placement.describe(len(seeds)))
    rows, _ = run_strategies(splits, pool, built, student, config, seeds, metrics_dir=out / "metrics",
                             losses=composite, checkpoints=checkpoints, devices=placement.devices)
    write_results(out / "results.json", choice.dataset, rows, teachers=teacher_rows(pool), student=student.to_dict(),
                  config=config.__dict__, devices=placement.devices, padded_seeds=placement.padding,
                  processes=processes.process_count())
    checkpoints.remove()  # results.json is complete: nothing needs them now
    return finished(out, rows, teacher_rows(pool))


def finished(out: Path, rows: list[dict], teachers: list[dict], reused: bool = False) -> RunResult:
    """The run's results.json as process 0 wrote it; in the other processes of a multi-process
    run, which neither write nor read `out`, the rows they computed (none for a run found
    finished)."""
    from mtkd.distributed import is_writer

    if is_writer():
        return RunResult.read(out, reused=reused)
    return RunResult(Path(out), tuple(rows), tuple(teachers), {"rows": rows}, reused)


def select(student: Any = "mlp", data: str | Mapping = "mnist1d", teachers: Any = None, *,
           procedure: str = "population", selector: Any = None, compare: Sequence[str] = (),
           seeds: int | Sequence[int] = 3, out: str | os.PathLike, student_options: Mapping[str, Any] | None = None,
           train: TrainConfig | None = None, data_dir=None, val_fraction: float = 0.1, split_seed: int = 0,
           val_indices=None, val_split: str | None = None, checkpoint: CheckpointConfig = CheckpointConfig(),
           overwrite: bool = False, resume: bool = False, episodic: Mapping[str, Any] | None = None,
           **train_options) -> RunResult:
    """`mtkd select train`: learn a teacher selector by `procedure` (`mtkd.api.selection`), save
    its policy in `out/policy`, and report the students distilled with it (the `rl` row) beside
    the `compare` strategies. `selector`: the procedure's config (PopulationConfig,
    SelectorConfig or AgentConfig) or a mapping of its options, named as in an ablation's [rl]
    section; `episodic`: the episodic procedure's own settings (`EpisodicOptions`' fields)."""
    from mtkd.api.selection import PROCEDURES, SelectionRun
    from mtkd.distill.experiment import build_strategies, run_strategies, teacher_rows
    from mtkd.distill.results import write_results
    from mtkd.progress import stderr_line
    from mtkd.run_checkpoints import start_run

    check_inputs()
    config = train_config(train, train_options)
    student = student_spec(student, student_options)
    seeds = seed_list(seeds)
    chosen = PROCEDURES.get(procedure)(selector, config, student, dict(episodic or {}))
    compare = names(compare, "compare")
    choice = choose_data(data, data_dir, val_fraction, split_seed, val_indices, val_split)
    splits = choice.load()
    teachers = choose_teachers(teachers, choice)
    pool = load_pool(choice, teachers, splits)
    compared = build_strategies(compare, pool)  # bad names fail before training
    chosen.check(pool)
    signature = {"kind": chosen.kind, "dataset": choice.dataset, "teachers": teachers, "student": student.to_dict(),
                 "config": config.__dict__, "seeds": seeds, **chosen.signature(), "compare": compare,
                 **choice.signature(splits)}
    out, checkpoints = start_run(out, signature, overwrite=overwrite, resume=resume, config=checkpoint,
                                 log=stderr_line)
    if checkpoints is None:
        return finished(out, [], [], reused=True)
    run = SelectionRun(splits, pool, student, config, seeds, out, checkpoints, compared, choice.dataset, teachers,
                       stderr_line)
    rows, selector_record = chosen.train(run)
    if compared:
        rows += run_strategies(splits, pool, compared, student, config, seeds, metrics_dir=out / "metrics",
                               log=stderr_line, checkpoints=checkpoints)[0]
    write_results(out / "results.json", choice.dataset, rows, teachers=teacher_rows(pool), student=student.to_dict(),
                  config=config.__dict__, selector=selector_record)
    checkpoints.remove()
    return finished(out, rows, teacher_rows(pool))


def ablate(config: Any, out: str | os.PathLike, *, seeds: int | None = None, epochs: int | None = None,
           teacher_epochs: int | None = None,
           strategies: Sequence[str] | None = None, data_dir=None, devices: int | None = None,
           checkpoint: CheckpointConfig | None = None, overwrite: bool = False, resume: bool = False,
           distributed=None) -> RunResult:
    """`mtkd ablate`: every row of an ablation config (a TOML/YAML file, a mapping in its form, or
    an AblationConfig) over its seeds; results.json, .csv, .md, figures, metrics/ and tensorboard/
    in `out` (`out/<pool>/` for several pools, `out/<pair>/` for pairs). `seeds`, `epochs`,
    `teacher_epochs`, `strategies` and `data_dir` override the config's. A failed row is written and named; `RunResult.rows` marks it."""
    from mtkd.ablation import AblationConfig, load_ablation_config, run_ablation
    from mtkd.ablation.config import ablation_config_from_dict
    from mtkd.distributed import is_writer

    check_inputs()
    if isinstance(config, (str, os.PathLike)):
        config = load_ablation_config(config)
    elif isinstance(config, Mapping):
        config = ablation_config_from_dict(dict(config), base_dir=Path.cwd())
    elif not isinstance(config, AblationConfig):
        raise ConfigError(f"an ablation config is a file, a mapping or an AblationConfig, got {type(config).__name__}")
    changes = {k: v for k, v in (("seeds", seeds), ("data_dir", os.fspath(data_dir) if data_dir is not None else None),
                                 ("devices", devices), ("teacher_epochs", teacher_epochs)) if v is not None}
    if epochs is not None:
        changes["train"] = config.train.replace(epochs=epochs)
    config = dataclasses.replace(config, checkpoint=checkpoint or config.checkpoint, **changes)
    if strategies is not None:
        config = config.only(names(strategies, "strategies"))
    start_distributed(distributed)  # before any other JAX work
    rows = run_ablation(config, out, overwrite=overwrite, resume=resume)
    single = Path(out) / "results.json"
    if is_writer() and single.is_file() and not config.pools and not config.pairs:
        result = RunResult.read(out)
        return dataclasses.replace(result, rows=tuple(rows))  # failed rows included, as run_ablation returns them
    return RunResult(Path(out), tuple(rows), (), {"rows": rows})


def train_teachers(pool: str | os.PathLike = "default", data: str | Mapping = "mnist1d", *, out: str | os.PathLike,
                   data_dir=None, val_fraction: float = 0.1, split_seed: int = 0, val_indices=None,
                   val_split: str | None = None, checkpoint: CheckpointConfig = CheckpointConfig(),
                   overwrite: bool = False, resume: bool = False):  # -> mtkd.teachers.TeacherPool
    """`mtkd teachers train`: every teacher of a pool spec (a preset name or a TOML/YAML file)
    trained, evaluated on validation and saved in `out`; returns the loaded `TeacherPool` (its
    names, accuracies and cached logits), not a `RunResult`: a pool has no rows."""
    from mtkd.distill.pool_training import train_pool
    from mtkd.teachers import load_pool_spec

    choice = choose_data(data, data_dir, val_fraction, split_seed, val_indices, val_split)
    spec = load_pool_spec(os.fspath(pool), choice.dataset)
    return train_pool(choice.dataset, spec, out, data_dir=choice.data_dir, val_fraction=choice.val_fraction,
                      split_seed=choice.split_seed, overwrite=overwrite, resume=resume,
                      val_indices=choice.val_indices, val_split=choice.val_split, checkpoint=checkpoint)
