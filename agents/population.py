"""The population selector: credit from whole runs of a vmapped population of students.

A generation draws one 0/1 teacher mask per student from the policy (teacher k in with
probability p_k = sigmoid(logit_k), clipped to [exploration, 1 - exploration]), trains every
student of the population for the horizon (default: the first half of the run) as one vmapped
program (`fit` with `teacher_masks`), and reads each student's return once, at its end: the
validation metric of its best epoch. Least squares over every generation's students so far (`mtkd.agents.population_credit`)
gives each teacher's effect on the final student and its own standard error; the policy's logit
for teacher k is then its start moved by `policy_learning_rate` times the evidence t_k =
effect / se (soft-thresholded at `evidence_threshold`, capped at `evidence_cap`): the natural-gradient step of REINFORCE with a population
baseline, in noise units. Evidence pools every generation, and the next generation samples around
the moved policy, so a teacher that hurts is measured less and the others in better company.

The reported students (the run's seeds) are then trained from scratch with the final policy,
through the `rl` fusion strategy and the saved policy itself, under each final candidate (the
selected teachers by each of `final_fusion`, the whole pool by each of `final_whole_pool`); the
candidate with the best mean validation accuracy is the row, and its policy is saved, so the
saved policy reproduces the row exactly. The population's seeds and masks come from `agent_seed`
and a constant of their own (`POPULATION_STREAM`), never from a student seed's stream. Runs whose credit was computed
with the same options (say `rl` and `rl:per_example` in one ablation) share it through
`generations.json` in the run's selector folder, which also resumes an interrupted search.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import jax.numpy as jnp
import numpy as np

from mtkd.agents.population_config import POPULATION_REWARDS, PopulationConfig
from mtkd.agents.population_credit import Credit, draw_masks, least_squares_credit
from mtkd.agents.selector_config import start_logits
from mtkd.distill.config import TrainConfig
from mtkd.distill.fit import SplitArrays, fit
from mtkd.distill.seed_map import fitted_program
from mtkd.distill.objective import calibrated_cross_entropy
from mtkd.distributed import is_writer, to_host
from mtkd.fusion.strategies import StrategyContext, make_strategy
from mtkd.models import ModelSpec
from mtkd.models.apply import predict
from mtkd.progress import stderr_line
from mtkd.runs import metrics_stem, replace_text

# Folded into every population seed, so no population student ever shares a student seed's stream
# (student seeds are small integers; these have the top bit set).
POPULATION_STREAM = 0x5E1EC7
GENERATIONS_FILE = "generations.json"


@dataclasses.dataclass
class Generation:
    """One generation: the policy's probabilities it sampled from, its students' seeds, masks and
    returns, the credit fitted on every generation up to it and the probabilities that gave."""

    probability: list[float]
    seeds: list[int]
    masks: list[list[float]]
    returns: list[float]
    val_accuracy: list[float]
    credit: dict
    next_probability: list[float]
    seconds: float
    fusions: list[int] = dataclasses.field(default_factory=list)  # per student: its index in `config.fusions`


@dataclasses.dataclass
class SearchResult:
    logits: np.ndarray  # the final policy's logits (K,)
    generations: list[Generation]
    credit: Credit
    seconds: float
    fusion: str = "uniform"  # the fusion chosen among `config.fusions`


def policy_logits(start: np.ndarray, credit: Credit, config: PopulationConfig) -> np.ndarray:
    """The start moved by the evidence: logit_k = start_k + lr * evidence(t_k), the part of |t_k|
    beyond the threshold, capped (`mtkd.agents.credit.evidence` with unit noise)."""
    step = np.sign(credit.t) * np.clip(np.abs(credit.t) - config.evidence_threshold, 0.0, config.evidence_cap)
    return start + config.policy_learning_rate * step


def population_seeds(agent_seed: int, generation: int, count: int) -> list[int]:
    """Student seeds of one generation: from (POPULATION_STREAM, agent_seed, generation), top bit set."""
    state = np.random.SeedSequence([POPULATION_STREAM, agent_seed, generation]).generate_state(count)
    return [int(s) | 0x80000000 for s in state]


def population_masks(agent_seed: int, generation: int, probability: np.ndarray, count: int,
                     exploration: float) -> np.ndarray:
    rng = np.random.default_rng([POPULATION_STREAM, agent_seed, generation, 1])
    return draw_masks(rng, probability, count, exploration)


def _calibrated_losses(fitted, x_val, y_val, train: TrainConfig) -> np.ndarray:
    """Each population student's calibrated validation loss, at its best epoch's parameters (as
    many students at once as `train.vmap_chunk` or the memory allows)."""
    def one(params):
        return calibrated_cross_entropy(predict(fitted.graphdef, params, x_val, train.eval_batch_size), y_val)

    losses = fitted_program(one, (0,), (fitted.params,), train.vmap_chunk, log=stderr_line,
                            what="students' validation losses")(fitted.params)
    return np.asarray(to_host(losses), np.float64)


def run_generation(splits, logits, student: ModelSpec, train: TrainConfig, config: PopulationConfig,
                   seeds: list[int], masks: np.ndarray, context: StrategyContext, checkpoints=None,
                   devices: int | None = None, fusions: np.ndarray | None = None):
    """Trains one student per (seed, mask) for the horizon, each from its fusion (`fusions`: an
    index into `config.fusions` per student, default all the first) over its mask's teachers; the
    students of one fusion are one vmapped program: (returns, val accuracies)."""
    horizon = train.replace(epochs=config.horizon_epochs(train.epochs))
    fusions = np.zeros(len(seeds), int) if fusions is None else np.asarray(fusions)
    x_val, y_val = jnp.asarray(splits.x_val), jnp.asarray(splits.y_val)
    returns, accuracy = np.zeros(len(seeds)), np.zeros(len(seeds))
    for index, name in enumerate(config.fusions):
        members = np.flatnonzero(fusions == index)
        if members.size == 0:
            continue
        # One fusion: `checkpoints` is the generation's loop; several: the generation's folder, a loop each.
        loop = None if checkpoints is None else (checkpoints if len(config.fusions) == 1 else checkpoints.loop(name))
        fitted = fit(student, splits.input_shape, splits.num_classes,
                     SplitArrays(jnp.asarray(splits.x_train), jnp.asarray(splits.y_train), logits["train"]),
                     SplitArrays(x_val, y_val), make_strategy(name, context), horizon, [seeds[i] for i in members],
                     teacher_masks=masks[members], checkpoints=loop, devices=devices)
        accuracy[members] = np.asarray(fitted.val_accuracy, np.float64)
        if POPULATION_REWARDS.get(config.reward) == "accuracy":
            returns[members] = accuracy[members]
        else:
            returns[members] = -_calibrated_losses(fitted, x_val, y_val, train)
    return returns, accuracy


def search(splits, logits, teacher_names: Sequence[str], teacher_val_accuracy: Sequence[float], student: ModelSpec,
           train: TrainConfig, config: PopulationConfig, folder: Path | None = None, checkpoints=None,
           log: Callable[[str], None] = stderr_line, devices: int | None = None) -> SearchResult:
    """Runs the generations (reusing those already in `folder/generations.json` for the same
    options) and returns the final policy's logits with the credit it came from."""
    started = time.perf_counter()
    num_teachers = len(teacher_names)
    config.check_pool(num_teachers)
    start = start_logits(config.init, teacher_val_accuracy, splits.num_classes)
    key = {"config": config.search_key(), "teachers": list(teacher_names), "student": student.to_dict(),
           "train": train.__dict__ if not hasattr(train, "signature") else train.signature()}
    done = _read_generations(folder, key)
    logits_now = start
    generations: list[Generation] = []
    credit = None
    horizon = config.horizon_epochs(train.epochs)
    context = StrategyContext(tuple(teacher_names), tuple(float(a) for a in teacher_val_accuracy))
    for g in range(config.generations):
        probability = 1.0 / (1.0 + np.exp(-logits_now))
        if g < len(done):
            generation = done[g]
            log(f"  population: generation {g + 1}/{config.generations} reused from {GENERATIONS_FILE}")
        else:
            seeds = population_seeds(config.agent_seed, g, config.population)
            masks = population_masks(config.agent_seed, g, probability, config.population, config.exploration)
            log(f"  population: generation {g + 1}/{config.generations}: {config.population} students x {horizon} "
                f"epochs, sampling " + ", ".join(f"{n} {p:.2f}" for n, p in zip(teacher_names, probability)))
            began = time.perf_counter()
            fusions = np.arange(config.population) % len(config.fusions)  # an even split over the candidates
            loop = None
            if checkpoints is not None:
                loop = checkpoints.loop(f"generation_{g + 1}") if len(config.fusions) == 1 else \
                    checkpoints.part(f"generation_{g + 1}")
            returns, accuracy = run_generation(splits, logits, student, train, config, seeds, masks, context, loop,
                                               devices, fusions)
            generation = Generation(probability.round(6).tolist(), seeds, masks.tolist(), returns.tolist(),
                                    accuracy.tolist(), {}, [], round(time.perf_counter() - began, 2),
                                    fusions.tolist())
        generations.append(generation)
        credit = _pooled_credit(generations, len(config.fusions))
        logits_now = policy_logits(start, credit, config)
        generation.credit = credit.to_dict()
        generation.next_probability = (1.0 / (1.0 + np.exp(-logits_now))).round(6).tolist()
        log("    credit (t): " + ", ".join(f"{n} {t:+.1f}" for n, t in zip(teacher_names, credit.t))
            + "".join(f", {f} over {config.fusions[0]} {t:+.1f}" for f, t in zip(config.fusions[1:], credit.extra_t))
            + "; policy: " + ", ".join(f"{n} {p:.2f}" for n, p in zip(teacher_names, generation.next_probability)))
        _write_generations(folder, key, generations)
    fusion = chosen_fusion(start, credit, config)
    return SearchResult(logits_now.astype(np.float32), generations, credit, round(time.perf_counter() - started, 2),
                        fusion)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One way the reported students may use the search's result: the policy logits they apply
    (the search's, or every teacher selected) and the fusion strategy over the teachers selected."""

    teachers: str  # "selected" or "all"
    fusion: str
    logits: np.ndarray

    @property
    def label(self) -> str:
        return f"{self.teachers}.{self.fusion.replace(':', '_')}"


# A logit every teacher of the whole-pool candidates is at least: "select all"'s 0.9.
WHOLE_POOL_LOGIT = float(np.log(9.0))


def final_candidates(result: SearchResult, config: PopulationConfig) -> list[Candidate]:
    """The reported students' candidates, in order of preference among equals: each of
    `final_fusion` over the selected teachers (default the fusion the search chose), then each of
    `final_whole_pool` over every teacher, less those that train exactly as an earlier one (greedy
    weights when the search kept every teacher)."""
    logits = np.asarray(result.logits, np.float32)
    whole = np.maximum(logits, WHOLE_POOL_LOGIT).astype(np.float32)
    keeps_all = config.apply == "greedy" and bool(np.all(logits > 0))
    selected = [Candidate("selected", f, logits) for f in (config.final_fusions or (result.fusion,))]
    return selected + [Candidate("all", f, whole) for f in config.whole_pool_fusions
                       if not (keeps_all and f in {c.fusion for c in selected})]


def chosen_fusion(start: np.ndarray, credit: Credit, config: PopulationConfig) -> str:
    """The first candidate fusion unless another beats it by as much evidence as it takes to drop a
    teacher from "select all" (t above log 9 / lr + threshold, 1.6 by default); then the best of those."""
    cut = float(np.log(9.0)) / config.policy_learning_rate + config.evidence_threshold
    better = [(effect, name) for effect, t, name in zip(credit.extra_effect, credit.extra_t, config.fusions[1:])
              if t > cut]
    return max(better)[1] if better else config.fusions[0]


def _pooled_credit(generations: list[Generation], num_fusions: int = 1) -> Credit:
    masks = np.concatenate([np.asarray(g.masks) for g in generations])
    returns = np.concatenate([np.asarray(g.returns) for g in generations])
    labels = np.concatenate([np.full(len(g.returns), i) for i, g in enumerate(generations)])
    fusions = np.concatenate([np.asarray(g.fusions or [0] * len(g.returns)) for g in generations])
    extra = (fusions[:, None] == np.arange(1, num_fusions)[None, :]).astype(np.float64)  # one column per other fusion
    return least_squares_credit(masks, returns, labels, extra)


def _read_generations(folder: Path | None, key: dict) -> list[Generation]:
    path = None if folder is None else Path(folder) / GENERATIONS_FILE
    if path is None or not path.is_file():
        return []
    try:
        saved = json.loads(path.read_text())
    except ValueError:
        return []  # written atomically: damage from outside, so search again
    if saved.get("key") != json.loads(json.dumps(key)):
        return []
    return [Generation(**g) for g in saved["generations"]]


def _write_generations(folder: Path | None, key: dict, generations: list[Generation]) -> None:
    if folder is None or not is_writer():
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    replace_text(Path(folder) / GENERATIONS_FILE, json.dumps(
        {"key": key, "generations": [dataclasses.asdict(g) for g in generations]}) + "\n")


def run_population_selector(splits, pool, out: Path, name: str, config: PopulationConfig, student: ModelSpec,
                            train: TrainConfig, seeds: Sequence[int], metrics_dir: Path | None,
                            log: Callable[[str], None] = stderr_line, checkpoints=None,
                            devices: int | None = None, search_folder: Path | None = None) -> dict[str, Any]:
    """The population search, then the reported students (`seeds`) distilled under each final
    candidate as the `rl` strategy; the candidate best on validation is the row named `name` and
    its policy is saved in `out/policy/`: the `results.json` row.
    `checkpoints` is the run's `RunCheckpoints`; `search_folder` where the generations are kept
    (default `out`), shared by rows of one run that search with the same options."""
    from mtkd.agents.procedure import save_policy_in_place
    from mtkd.agents.rl_strategy import make_rl_strategy
    from mtkd.agents.checkpoint import PolicyMeta
    from mtkd.agents.policies import make_policy
    from mtkd.envs.observation import observation_size
    from mtkd.distill.experiment import run_strategies

    horizon = config.horizon_epochs(train.epochs)
    log(f"  {name}: population selector, {config.generations} generations x {config.population} students x "
        f"{horizon} epochs, reward {config.reward}, {' or '.join(config.fusions)} over the selected teachers, teachers "
        f"{', '.join(pool.names)}")
    logits = pool.logits(splits)
    result = search(splits, logits, pool.names, pool.val_accuracy, student, train, config,
                    folder=search_folder or out,
                    checkpoints=checkpoints.part("population") if checkpoints is not None else None,
                    log=log, devices=devices)
    policy = make_policy("teacher_bias")
    candidates = final_candidates(result, config)
    context = pool.strategy_context()

    def meta_of(candidate: Candidate) -> PolicyMeta:
        return PolicyMeta("teacher_bias", {}, len(pool.names), observation_size(len(pool.names), config.per_example),
                          config.per_example, train.temperature, list(pool.names), config.apply, candidate.fusion)

    probability = 1.0 / (1.0 + np.exp(-result.logits))
    log(f"  {name}: final policy " + ", ".join(f"{n} {p:.2f}" for n, p in zip(pool.names, probability))
        + f" ({config.apply}); distilling {len(seeds)} students with "
        + (f"it over {candidates[0].fusion}" if len(candidates) == 1 else
           f"each of {', '.join(c.label for c in candidates)}, the best on validation reported"))
    # One candidate is the row itself; several train under names of their own (their metrics in
    # out/candidates/), and the one with the best mean validation accuracy becomes the row.
    single = len(candidates) == 1
    strategies = [dataclasses.replace(make_rl_strategy(policy, {"b": jnp.asarray(c.logits)}, meta_of(c),
                                                       context=context),
                                      name=name if single else f"{name}.{c.label}") for c in candidates]
    rows, fits = run_strategies(splits, pool, strategies, student, train, seeds,
                                metrics_dir=metrics_dir if single else Path(out) / "candidates", log=log,
                                checkpoints=checkpoints, devices=devices)
    means = [float(np.mean(r["val_accuracy"])) for r in rows]
    best = int(np.argmax(means))  # the first of equals: the selection before the whole pool
    chosen, row = candidates[best], dict(rows[best], strategy=name)
    if not single:
        log(f"  {name}: validation accuracy " + ", ".join(f"{c.label} {100 * m:.2f}" for c, m in zip(candidates, means))
            + f": {chosen.label} reported")
        if metrics_dir is not None and is_writer():
            metrics_dir.mkdir(parents=True, exist_ok=True)
            source = Path(out) / "candidates" / f"{metrics_stem(strategies[best].name)}.jsonl"
            replace_text(metrics_dir / f"{metrics_stem(name)}.jsonl", source.read_text())
    meta = meta_of(chosen)
    policy_dir = Path(out) / "policy"
    if is_writer():
        policy_dir = save_policy_in_place(out, {"b": np.asarray(chosen.logits)}, meta, {
            "selector": {"procedure": "population", **config.to_dict()}, "student": student.to_dict(),
            "credit": result.credit.to_dict(), "final_choice": chosen.label})
        # The credit's record (wall-clock times stay in generations.json: a resumed run writes this
        # file byte for byte as an uninterrupted one).
        replace_text(Path(out) / "selector.jsonl", "".join(json.dumps(
            {"generation": i + 1, "teachers": list(pool.names),
             **{k: v for k, v in dataclasses.asdict(g).items() if k != "seconds"}}) + "\n"
            for i, g in enumerate(result.generations)))
    # The weights the reported students trained with, per seed, averaged over the run (S, K).
    selection = np.mean([np.asarray(r["selection"]) for r in fits[strategies[best].name].history], axis=0)
    final_seconds = round(sum(r["seconds"] for r in rows), 2)
    row.update(seconds=round(final_seconds + sum(g.seconds for g in result.generations), 2),
               final_seconds=final_seconds, policy=str(policy_dir),
               selector={"procedure": "population", **config.to_dict()},
               credit=result.credit.to_dict(), population_students=sum(len(g.returns) for g in result.generations),
               fusion=chosen.fusion, final_choice=chosen.label,
               final_candidates=[{"candidate": c.label, "teachers": c.teachers, "fusion": c.fusion,
                                  "val_accuracy": r["val_accuracy"], "test_accuracy": r["test_accuracy"],
                                  "seconds": r["seconds"]} for c, r in zip(candidates, rows)],
               mean_selection={n: [round(float(v), 4) for v in selection[:, k]] for k, n in enumerate(pool.names)})
    return row


__all__ = ["POPULATION_STREAM", "PopulationConfig", "SearchResult", "policy_logits",
           "Candidate", "final_candidates", "population_masks", "population_seeds", "run_population_selector", "search"]
