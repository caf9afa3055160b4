"""Running an ablation: every strategy over S seeds on one data set and pool, one protocol."""

from __future__ import annotations

import dataclasses
import time
import traceback
from pathlib import Path
from typing import Callable

from mtkd.distributed import is_writer, process_count
from mtkd.errors import ConfigError
from mtkd.runs import refuse_duplicates
from mtkd.ablation.config import AblationConfig
from mtkd.ablation.figures import plot_all
from mtkd.ablation.report import markdown_table, write_csv
from mtkd.ablation.runners import CHECKS, RUNNERS, AblationRun, expand_strategies, family_strategy, runner_for
from mtkd.data import load_dataset, training_fraction
from mtkd.distill.experiment import bind_pool_loss, build_strategies, teacher_rows
from mtkd.distill.results import format_table, write_results
from mtkd.run_checkpoints import CHECKPOINTS, FinishedStrategies, RunCheckpoints
from mtkd.runs import claim_output_dir, replace_text
from mtkd.devices import SeedPlacement, seed_placement
from mtkd.distill.pool_training import pool_for
from mtkd.models import abstract_model
from mtkd.models.architectures import parameters_only_model
from mtkd.teachers import default_pool_dir
from mtkd.teachers.spec import load_pool_spec
from mtkd.progress import stderr_line
from mtkd.interrupts import stop_point


def check_processes(names: list[str], config: AblationConfig) -> None:
    """The episodic selector procedure (`[rl] procedure = "episodic"`) trains its policy in one
    process (its environments are not split over processes): refused in a multi-process run. The
    population selector (the default `rl`) and the joint one split their students like every other row."""
    episodic = config.section("rl").get("procedure") == "episodic" and "policy" not in config.section("rl")
    if process_count() > 1 and episodic and any(name.partition(":")[0] == "rl" for name in names):
        raise ConfigError("[rl] procedure = \"episodic\" trains its policy in a single process: use the "
                          "population procedure (the default) or the joint one in a multi-process ablation "
                          "(--coordinator-address), or run it in one process")


def check_strategies(names: list[str], pool, config: AblationConfig | None = None) -> None:
    """Fusion strategies are built once here, and runners' options checked, so that a bad name
    or option fails before any training."""
    checked = set()
    for name in names:
        family = name.partition(":")[0]
        if family not in RUNNERS:
            build_strategies([name], pool)
        elif config is not None and family in CHECKS:
            CHECKS.get(family)(config, name, pool)
            checked.add(family)
    # A section whose strategy is not listed is still read: a typo there is a typo.
    for section in sorted(config.sections if config is not None else ()):
        if section not in checked and section in CHECKS:
            CHECKS.get(section)(config, section, pool)


# The rows whose trainers carry a model's parameters alone (`parameters_only_model`), by family.
PARAMETERS_ONLY = {"dml": "deep mutual learning", "dml+teachers": "deep mutual learning",
                   "independent": "deep mutual learning's independent peers", "byot": "BYOT"}


def check_running_stats(config: AblationConfig, names: list[str], splits) -> None:
    """A student with BatchNorm statistics under a row that cannot carry them is refused before
    the first row trains, not when that row's turn comes."""
    methods = [PARAMETERS_ONLY[name.partition(":")[0]] for name in names if name.partition(":")[0] in PARAMETERS_ONLY]
    if config.losses is not None or config.families:
        methods.append("training with feature or composite losses")
    if any(name.partition(":")[0] == "rl" for name in names) and config.section("rl").get("procedure") in (
            "joint", "episodic"):
        methods.append("the joint selector's environment")
    if methods:  # the first such row names itself
        parameters_only_model(config.student, splits.input_shape, splits.num_classes, methods[0])


@dataclasses.dataclass
class PreparedAblation:
    """One pool's ablation with everything checked: the splits, the pool, the strategy names and
    where the seeds go."""

    config: AblationConfig
    splits: object
    pool: object
    names: list[str]
    placement: SeedPlacement


def check_sections(config: AblationConfig) -> None:
    """The [rl], [dml] and [byot] options, as far as they can be checked without data or pool:
    every key and type, before anything is loaded or trained; and every pool spec it names (the
    second pool's typo must not wait for the first pool's teachers to train)."""
    for pool in config.pools or ([config.pool] if config.pool is not None else []):
        load_pool_spec(pool, config.dataset)
    for section in sorted(set(config.sections) | {name.partition(":")[0] for name in config.strategies}):
        if section in CHECKS:
            names = [name for name in config.strategies if name.partition(":")[0] == section] or [section]
            for name in names:
                CHECKS.get(section)(config, name, None)


def prepare_ablation(config: AblationConfig, log: Callable[[str], None]) -> PreparedAblation:
    """Loads the data, loads or trains the pool (a cache) and checks every strategy and option."""
    check_sections(config)
    placement = seed_placement(config.seeds, config.devices)  # a --devices this host cannot give fails here
    splits = load_dataset(config.dataset, data_dir=config.data_dir, val_fraction=config.val_fraction,
                          split_seed=config.split_seed, val_indices=config.val_indices, val_split=config.val_split)
    shortened = f"-teacher-epochs{config.teacher_epochs}" if config.teacher_epochs and config.pool_dir is None else ""
    log(f"teacher pool: {config.pool_dir or default_pool_dir(config.dataset, config.pool)}{shortened}"
        + (" (a folder of its own for this validation split)" if config.pool_dir is None
           and (config.val_indices or config.val_split) else ""))
    # config.pool None: a given pool directory, used as it is; pool_dir None: the pool's default cache.
    pool = pool_for(splits, config.pool, config.pool_dir, config.data_dir, config.val_fraction, config.split_seed,
                    config.val_indices, config.val_split, teacher_epochs=config.teacher_epochs)
    # Teachers saw all of the training split; the student only its share of it.
    splits = training_fraction(splits, config.student_data_fraction)
    abstract_model(config.student, splits.input_shape, splits.num_classes)  # before any training
    names = expand_strategies(config.strategies, pool.names)
    check_running_stats(config, names, splits)
    refuse_duplicates(names + [family.name for family in config.families], "strategies (single:* expanded)")
    check_strategies(names, pool, config)
    check_processes(names, config)
    if config.losses is not None:
        bind_pool_loss(config.losses, pool, splits, config.student)  # layers and shapes, before any training
    for family in config.families:  # each its strategy, layers and shapes, before any training
        family_strategy(config, family.name, pool)
        bind_pool_loss(family.loss, pool, splits, config.student)
    names += [family.name for family in config.families]
    return PreparedAblation(config, splits, pool, names, placement)


def run_ablation(config: AblationConfig, out: str | Path, overwrite: bool = False,
                 log: Callable[[str], None] | None = None, resume: bool = False) -> list[dict]:
    """Runs the ablation into `out`; with several `pools`, each pool's into `out/<pool name>/`
    (every pool prepared and checked before any strategy trains). Returns the rows (each row of
    a multi-pool run names its `pool`).

    `resume` continues the same run from `out/checkpoints/` (`out/<pool>/checkpoints/`): finished
    strategies keep their rows, the one a kill interrupted restarts from its last checkpoint."""
    log = log or stderr_line
    started = time.perf_counter()
    if not config.pools and not config.pairs:
        prepared = prepare_ablation(config, log)
        out = claim_output_dir(out, {"kind": "ablation", **config.to_dict()}, overwrite=overwrite, resume=resume)
        rows = run_prepared(prepared, out, log)
        print(f"\nresults in {out} ({time.perf_counter() - started:.0f}s)")
        return rows
    prepared = [(label, prepare_ablation(one, log)) for label, one in config.for_each_pool()]
    out = claim_output_dir(out, {"kind": "ablation", **config.to_dict()}, overwrite=overwrite, resume=resume)
    rows, tables = [], []
    for label, one in prepared:
        log(f"{config.runs_label} {label}")
        # Part of the run claimed above: empty unless this is a resume of it.
        pool_out = claim_output_dir(out / label, {"kind": "ablation", **one.config.to_dict()}, resume=True,
                                     announce=False)
        pool_rows = run_prepared(one, pool_out, log)
        rows.extend({"pool": label, **row} for row in pool_rows)
        if is_writer():
            tables.append(f"## {config.runs_label.capitalize()} `{label}`\n\n" + (pool_out / "results.md").read_text())
    replace_text(out / "results.md", "\n".join(tables))
    print(f"\nresults in {out}/<{config.runs_label}>/ ({time.perf_counter() - started:.0f}s)")
    return rows


def run_prepared(prepared: PreparedAblation, out: Path, log: Callable[[str], None]) -> list[dict]:
    config, pool, names = prepared.config, prepared.pool, prepared.names
    checkpoints = RunCheckpoints(out / CHECKPOINTS, config.checkpoint, log)
    finished = FinishedStrategies(out / CHECKPOINTS / FinishedStrategies.FILE)
    run = AblationRun(config, prepared.splits, pool, out, log, checkpoints)
    if prepared.placement.devices > 1:
        log(prepared.placement.describe(config.seeds))
    rows = []
    for index, name in enumerate(names, start=1):
        kept = finished.rows(name)
        if kept is not None:
            log(f"[{index}/{len(names)}] {name}: finished before, its results kept")
            rows.extend(kept)
            continue
        log(f"[{index}/{len(names)}] {name}")
        try:
            new = runner_for(name, config)(run, name)
        except Exception as error:  # one failing strategy must not lose the others' results
            log(f"  {name} failed: {type(error).__name__}: {error}")
            log("".join(traceback.format_exception_only(type(error), error)).strip())
            new = [{"strategy": name, "seeds": run.seeds, "error": f"{type(error).__name__}: {error}"}]
        rows.extend(new)
        write_reports(out, config, rows, pool, prepared.placement)  # after every strategy, so an interrupted run keeps its rows
        finished.add(name, new)
        checkpoints.remove_loops()  # the finished strategy's checkpoints: no longer needed
        if index < len(names):
            stop_point(f"after {name} (its results are written)")
    if is_writer():
        plot_all(out, rows, teacher_rows(pool))
        print(format_table(rows, teacher_rows(pool)))
    return rows


def write_reports(out: Path, config: AblationConfig, rows: list[dict], pool, placement: SeedPlacement) -> None:
    teachers = teacher_rows(pool)
    write_results(out / "results.json", config.dataset, rows, teachers=teachers, config=config.to_dict(),
                  devices=placement.devices, padded_seeds=placement.padding,  # of the fusion rows' seeds
                  processes=process_count())
    write_csv(out / "results.csv", rows)
    replace_text(out / "results.md", markdown_table(rows, teachers))
