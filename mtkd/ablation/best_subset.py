"""`best_subset`: the honest fixed-subset oracle a learned selector has to beat.

Every non-empty subset of the pool (greedy forward selection above `EXHAUSTIVE_LIMIT` teachers)
is distilled as a uniform average over S seeds, all subsets and seeds as one vmapped batch
(`fit(..., teacher_masks=...)`); the subset with the highest mean validation accuracy (each seed
at its best epoch) is chosen, and its test accuracy is reported. Ties go to the smaller subset,
then to the earlier one in pool order. Test numbers are never used to choose; `best_subset.json`
lists every subset tried with its validation and (for the record) test accuracy.
"""

from __future__ import annotations

import itertools
import json
import time

import jax.numpy as jnp
import numpy as np

from mtkd.distributed import is_writer
from mtkd.runs import replace_text
from mtkd.ablation.runners import RUNNERS, AblationRun
from mtkd.distill.fit import SplitArrays, fit
from mtkd.distill.results import result_row
from mtkd.errors import ConfigError
from mtkd.fusion.strategies import make_strategy

EXHAUSTIVE_LIMIT = 6  # 2^6 - 1 = 63 subsets; above that, greedy forward selection


def all_subsets(num_teachers: int) -> np.ndarray:
    """Every non-empty 0/1 mask over K teachers, smaller subsets first: (2^K - 1, K)."""
    masks = [m for size in range(1, num_teachers + 1)
             for m in itertools.combinations(range(num_teachers), size)]
    out = np.zeros((len(masks), num_teachers), np.float32)
    for row, members in enumerate(masks):
        out[row, list(members)] = 1.0
    return out


def choose(masks: np.ndarray, mean_val: np.ndarray) -> int:
    """Index of the best subset: highest mean validation accuracy, then fewest teachers, then
    first in order."""
    order = sorted(range(len(masks)), key=lambda i: (-float(mean_val[i]), int(masks[i].sum()), i))
    return order[0]


def _evaluate_subsets(run: AblationRun, masks: np.ndarray, loop: str = "best_subset"):
    """fit over every (subset, seed) pair: (result, mean val accuracy per subset (M,)).
    `loop`: the name its checkpoints go under."""
    seeds = run.seeds
    strategy = make_strategy("uniform", run.pool.strategy_context())
    logits = run.pool.logits(run.splits)
    splits = run.splits
    result = fit(run.config.student, splits.input_shape, splits.num_classes,
                 SplitArrays(jnp.asarray(splits.x_train), jnp.asarray(splits.y_train), logits["train"]),
                 SplitArrays(jnp.asarray(splits.x_val), jnp.asarray(splits.y_val)), strategy, run.config.train,
                 [s for _ in masks for s in seeds],
                 test=SplitArrays(jnp.asarray(splits.x_test), jnp.asarray(splits.y_test)),
                 teacher_masks=np.repeat(masks, len(seeds), axis=0), checkpoints=run.loop(loop),
                 devices=run.config.devices)
    val = np.asarray(result.val_accuracy).reshape(len(masks), len(seeds))
    return result, val.mean(axis=1)


def search(run: AblationRun):
    """(subsets tried, the masks of the batch holding the chosen one, that batch's fit
    result, the chosen mask's index in it, the table of every subset tried) by exhaustive search or greedy forward selection."""
    num_teachers = len(run.pool.names)
    if num_teachers <= EXHAUSTIVE_LIMIT:
        masks = all_subsets(num_teachers)
        result, mean_val = _evaluate_subsets(run, masks)
        return len(masks), masks, result, choose(masks, mean_val), _table(run, masks, result, mean_val)
    chosen = np.zeros(num_teachers, np.float32)
    best = (-1.0, None, None, None)
    tried, table = 0, []
    while chosen.sum() < num_teachers:
        candidates = np.stack([chosen + np.eye(num_teachers, dtype=np.float32)[k]
                               for k in range(num_teachers) if not chosen[k]])
        result, mean_val = _evaluate_subsets(run, candidates, f"best_subset_size{int(chosen.sum()) + 1}")
        tried += len(candidates)
        table += _table(run, candidates, result, mean_val)
        index = choose(candidates, mean_val)
        if mean_val[index] <= best[0]:
            break  # adding any further teacher does not help on validation
        best = (float(mean_val[index]), candidates, result, index)
        chosen = candidates[index]
    return tried, best[1], best[2], best[3], table


def _table(run: AblationRun, masks: np.ndarray, result, mean_val: np.ndarray) -> list[dict]:
    """Every subset tried with its mean validation accuracy (the criterion) and, for the record
    only, its mean test accuracy."""
    test = np.asarray(result.test_accuracy).reshape(len(masks), -1).mean(axis=1)
    return [{"subset": [n for n, m in zip(run.pool.names, mask) if m], "val_accuracy": round(float(v), 6),
             "test_accuracy": round(float(t), 6)} for mask, v, t in zip(masks, mean_val, test)]


@RUNNERS.register("best_subset")
def run_best_subset(run: AblationRun, name: str) -> list:
    if name != "best_subset":
        raise ConfigError(f"strategy 'best_subset' takes no argument, got {name}")
    started = time.perf_counter()
    tried, masks, result, index, table = search(run)
    runs = len(run.seeds)
    take = slice(index * runs, (index + 1) * runs)
    members = [n for n, m in zip(run.pool.names, masks[index]) if m]
    run.log(f"  best_subset: {tried} subsets tried; chose {', '.join(members)} on validation")
    if is_writer():
        run.metrics_dir.mkdir(parents=True, exist_ok=True)
        replace_text(run.out / "best_subset.json", json.dumps({"chosen": members, "subsets": table}, indent=1) + "\n")
        replace_text(run.metrics_dir / "best_subset.jsonl", "".join(  # the chosen subset's runs only
            json.dumps({key: (value[take] if isinstance(value, list) else value) for key, value in record.items()})
            + "\n" for record in result.history))
    return [result_row("best_subset", result.seeds[take], result.val_accuracy[take], result.test_accuracy[take],
                       best_epoch=result.best_epoch[take], seconds=round(time.perf_counter() - started, 2),
                       subset=members, subsets_tried=tried)]
