"""Running a recipe of loss families (e.g. `experiments/loss_families.toml`): one results.json row each.

A recipe names a data set, a teacher pool, a student, training settings, a fusion strategy and a
list of families, each a composite loss (`[[families.losses]]`, see `mtkd.distill.loss_config`).
Every family is trained with `fit_composite` over the same seeds, so the rows compare losses
under one protocol. Run it with `python -m mtkd.distill.loss_families RECIPE --out DIR`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax.numpy as jnp

from mtkd.data import load_dataset
from mtkd.distill.composite_fit import fit_composite
from mtkd.distill.composition import bind_loss, feature_shapes
from mtkd.distill.config import TrainConfig
from mtkd.distill.experiment import build_strategies, check_pool_matches_splits, teacher_rows
from mtkd.distill.fit import SplitArrays, init_students, unstack
from mtkd.distill.loss_config import LossConfig
from mtkd.distill.results import format_table, result_row, write_results
from mtkd.distill.teacher_features import check_teacher_layers, pool_feature_shapes, pool_features, pool_heads
from mtkd.errors import ConfigError, MtkdError
from mtkd.models import ModelSpec
from mtkd.run_checkpoints import CheckpointConfig, FinishedStrategies, RunCheckpoints
from mtkd.runs import CHECKPOINTS, claim_output_dir
from mtkd.distill.pool_training import ensure_pool
from mtkd.teachers import default_pool_dir, load_pool
from mtkd.progress import stderr_line

TOP_LEVEL_KEYS = {"description", "dataset", "data_dir", "pool", "pool_dir", "seeds", "strategy", "student", "train",
                  "families", "rl", "val_fraction", "split_seed"}
FAMILY_KEYS = {"name", "losses", "strategy", "description"}


@dataclasses.dataclass(frozen=True)
class LossFamily:
    name: str
    loss: LossConfig
    strategy: str


@dataclasses.dataclass(frozen=True)
class LossFamilies:
    """A parsed recipe. `rl` holds the options of the `rl` strategy (`policy = DIR`, `greedy`)."""

    families: tuple[LossFamily, ...]
    dataset: str = "mnist1d"
    pool: str | None = "default"
    pool_dir: str | None = None
    data_dir: str | None = None
    seeds: int = 3
    student: ModelSpec = ModelSpec("mlp", {"widths": [100, 100]})
    train: TrainConfig = TrainConfig()
    rl: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    val_fraction: float = 0.1
    split_seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "pool": self.pool, "pool_dir": self.pool_dir, "seeds": self.seeds,
                "student": self.student.to_dict(), "train": dataclasses.asdict(self.train), "rl": dict(self.rl),
                "val_fraction": self.val_fraction, "split_seed": self.split_seed,
                "families": [{"name": f.name, "strategy": f.strategy, "losses": f.loss.to_dicts()}
                             for f in self.families]}


def loss_families_from_dict(raw: Mapping[str, Any]) -> LossFamilies:
    unknown = sorted(set(raw) - TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(f"loss-family recipe has unknown key(s): {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(TOP_LEVEL_KEYS))}")
    default_strategy = str(raw.get("strategy", "uniform"))
    families, names = [], set()
    for index, family in enumerate(raw.get("families", [])):
        bad = sorted(set(family) - FAMILY_KEYS)
        if bad or "name" not in family or "losses" not in family:
            raise ConfigError(f"family {index + 1} needs `name` and `losses` (and may set `strategy`); "
                              f"got keys {', '.join(sorted(family))}")
        if family["name"] in names:
            raise ConfigError(f"family {family['name']!r} is listed twice")
        names.add(family["name"])
        try:
            loss = LossConfig.from_dicts(family["losses"])
        except MtkdError as error:
            raise type(error)(f"family {family['name']!r}: {error}") from None
        families.append(LossFamily(str(family["name"]), loss, str(family.get("strategy", default_strategy))))
    if not families:
        raise ConfigError("the loss-family recipe lists no [[families]]")
    student = dict(raw.get("student", {"arch": "mlp", "options": {"widths": [100, 100]}}))
    pool = raw.get("pool", None if raw.get("pool_dir") else "default")
    return LossFamilies(tuple(families), str(raw.get("dataset", "mnist1d")), pool, raw.get("pool_dir"),
                        raw.get("data_dir"), int(raw.get("seeds", 3)),
                        ModelSpec(student.get("arch", "mlp"), dict(student.get("options", {}))),
                        TrainConfig(**dict(raw.get("train", {}))), dict(raw.get("rl", {})),
                        float(raw.get("val_fraction", 0.1)), int(raw.get("split_seed", 0)))


def load_loss_families(path: str | Path) -> LossFamilies:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"loss-family recipe {path} does not exist")
    try:
        return loss_families_from_dict(tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"loss-family recipe {path} is not valid TOML: {error}") from None
    except TypeError as error:  # an unknown [train] key
        raise ConfigError(f"loss-family recipe {path}: {error}") from None


def run_loss_families(config_path: str | Path, out_dir: str | Path, *, seeds: int | None = None,
                      epochs: int | None = None, pool_dir: str | None = None, data_dir: str | None = None,
                      only: Sequence[str] | None = None, overwrite: bool = False,
                      log: Callable[[str], None] | None = None, resume: bool = False,
                      checkpoint: CheckpointConfig = CheckpointConfig()) -> list[dict]:
    """Trains every family of the recipe; writes `out_dir/results.json` (one row per family, with
    its strategy and losses) after each family and per-epoch metrics under `out_dir/metrics/`.
    seeds, epochs, pool_dir and data_dir override the recipe; `only` keeps the named families.
    Every loss is bound to the pool and the student (layers, shapes, teacher names) before
    anything is trained. `resume` continues an interrupted run in `out_dir` exactly."""
    log = log or stderr_line
    recipe = load_loss_families(config_path)
    if only:
        missing = sorted(set(only) - {f.name for f in recipe.families})
        if missing:
            raise ConfigError(f"the recipe has no family {', '.join(missing)}; it has "
                              f"{', '.join(f.name for f in recipe.families)}")
        recipe = dataclasses.replace(recipe, families=tuple(f for f in recipe.families if f.name in only))
    # A pool directory given here is used as it is (like `mtkd distill --teachers DIR`).
    recipe = dataclasses.replace(recipe, seeds=seeds or recipe.seeds, pool_dir=pool_dir or recipe.pool_dir,
                                 pool=None if pool_dir else recipe.pool,
                                 data_dir=data_dir or recipe.data_dir,
                                 train=recipe.train.replace(epochs=epochs) if epochs else recipe.train)
    splits = load_dataset(recipe.dataset, data_dir=recipe.data_dir, val_fraction=recipe.val_fraction,
                          split_seed=recipe.split_seed)
    if recipe.pool is None:
        pool = load_pool(recipe.pool_dir, splits)
    else:
        pool = ensure_pool(recipe.dataset, recipe.pool, out_dir=recipe.pool_dir or default_pool_dir(
            recipe.dataset, recipe.pool), data_dir=recipe.data_dir, val_fraction=recipe.val_fraction,
            split_seed=recipe.split_seed)
    check_pool_matches_splits(pool, recipe.val_fraction, recipe.split_seed)
    if any(f.strategy.partition(":")[0] == "rl" for f in recipe.families):
        importlib.import_module("agents")  # registers the `rl` strategy
    strategies = {f.name: build_strategies([f.strategy], pool, recipe.rl)[0] for f in recipe.families}
    graphdef, params = init_students(recipe.student, splits.input_shape, splits.num_classes, [0])
    student_shapes = feature_shapes(graphdef, unstack(params, 0), splits.input_shape)
    teacher_shapes = pool_feature_shapes(pool, splits)
    bound = {f.name: bind_loss(f.loss, pool.names, student_shapes, teacher_shapes, recipe.student.arch)
             for f in recipe.families}
    for loss in bound.values():
        pool_heads(pool, loss)  # heads first: an external teacher's refusal names what is missing
        check_teacher_layers(loss, pool, splits)
    out = claim_output_dir(out_dir, {"kind": "loss-families", **recipe.to_dict()}, overwrite=overwrite,
                           resume=resume)
    checkpoints = RunCheckpoints(out / CHECKPOINTS, checkpoint, log)
    finished = FinishedStrategies(out / CHECKPOINTS / FinishedStrategies.FILE)

    logits = pool.logits(splits)
    val = SplitArrays(jnp.asarray(splits.x_val), jnp.asarray(splits.y_val))
    test = SplitArrays(jnp.asarray(splits.x_test), jnp.asarray(splits.y_test))
    seed_list = list(range(recipe.seeds))
    rows = []
    for index, family in enumerate(recipe.families, start=1):
        log(f"[{index}/{len(recipe.families)}] {family.name} ({family.strategy})")
        if finished.rows(family.name) is not None:
            rows.extend(finished.rows(family.name))
            log("  finished before, its results kept")
            continue
        strategy = strategies[family.name]
        train = SplitArrays(jnp.asarray(splits.x_train), jnp.asarray(splits.y_train), logits["train"])
        features = pool_features(pool, splits, bound[family.name])["train"]
        started = time.perf_counter()
        (out / "metrics").mkdir(exist_ok=True)
        try:
            result = fit_composite(recipe.student, splits.input_shape, splits.num_classes, train, val, strategy,
                                   family.loss, recipe.train, seed_list, test=test, teacher_features=features,
                                   teacher_names=pool.names, metrics_path=out / "metrics" / f"{family.name}.jsonl",
                                   teacher_heads=pool_heads(pool, bound[family.name]),
                                   checkpoints=checkpoints.loop(family.name))
        except MtkdError as error:  # e.g. divergence: keep the other families' rows
            log(f"  {family.name} failed: {error}")
            rows.append({"strategy": family.name, "seeds": seed_list, "error": str(error)})
        else:
            seconds = round(time.perf_counter() - started, 2)
            rows.append(result_row(family.name, result.seeds, result.val_accuracy, result.test_accuracy,
                                   fusion=strategy.name, losses=family.loss.to_dicts(),
                                   best_epoch=result.best_epoch, seconds=seconds))
            log(f"  test accuracy {sum(result.test_accuracy) / len(result.test_accuracy):.4f} ({seconds:.0f}s)")
        write_results(out / "results.json", recipe.dataset, rows, teachers=teacher_rows(pool),
                      student=recipe.student.to_dict(), config=dataclasses.asdict(recipe.train))
        finished.add(family.name, rows[-1:])
        checkpoints.remove_loops()
    print(format_table(rows, teacher_rows(pool)))
    return rows


def main(argv: list[str] | None = None) -> int:
    from mtkd.cli.options import add_run_options, checkpoint_config_from  # this CLI is the application layer

    parser = argparse.ArgumentParser(description="Train one student per loss family of a recipe.")
    parser.add_argument("recipe", help="recipe file, e.g. experiments/loss_families.toml")
    parser.add_argument("--out", required=True, help="output directory (results.json, metrics/)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the recipe's)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    parser.add_argument("--teachers", default=None, help="teacher pool directory (default: the recipe's pool)")
    parser.add_argument("--families", default=None, help="comma-separated families to run (default: all)")
    parser.add_argument("--data-dir", default=None)
    add_run_options(parser, "loss-family run")
    args = parser.parse_args(argv)
    try:
        run_loss_families(args.recipe, args.out, seeds=args.seeds, epochs=args.epochs, pool_dir=args.teachers,
                          data_dir=args.data_dir, overwrite=args.overwrite, resume=args.resume,
                          checkpoint=checkpoint_config_from(args),
                          only=args.families.split(",") if args.families else None)
    except MtkdError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
