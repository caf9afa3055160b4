"""Options of the population selector (`mtkd.agents.population`), validated on construction.

One name per setting: the field, the ablation's `[rl]` key and the `mtkd select train` flag are the
same word; a setting the joint selector also has (`init`, `apply`, `agent_seed`,
`policy_learning_rate`, `evidence_cap`, `per_example`) means the same there.
"""

from __future__ import annotations

import dataclasses
import math

from mtkd.config_flags import DictConfig, setting
from mtkd.errors import ConfigError, UnknownNameError
from mtkd.registry import Registry

# What a population student returns at the end of its run, higher is better, from its best
# validation epoch's parameters (the epoch the reported students are chosen by, too).
# `final_val_calibrated_loss`: minus the validation cross-entropy at the best temperature of a grid
# (`mtkd.distill.objective.calibrated_cross_entropy`), continuous, so less noisy than accuracy on a
# few hundred examples; `final_val_accuracy`: the accuracy itself.
POPULATION_REWARDS: Registry[str] = Registry("population reward")
POPULATION_REWARDS.add("final_val_calibrated_loss", "calibrated_loss")
POPULATION_REWARDS.add("final_val_accuracy", "accuracy")


def _whole(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be a whole number >= {low}, got {value!r}")


def _number(name: str, value, low: float, high: float, *, open_low: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < low or value > high or (open_low and value == low):
        bounds = f"({low}, {high}]" if open_low else f"[{low}, {high}]"
        raise ConfigError(f"{name} must be a number in {bounds}, got {value!r}")


def _split(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _fusion_list(field: str, value, strategies, *, empty: bool) -> None:
    """ConfigError unless `value` names fusion strategies of the selected teachers, comma-separated,
    each once (`empty`: "" names none); `fusion`, `final_fusion` and `final_whole_pool` alike."""
    items = [item.strip() for item in value.split(",")] if isinstance(value, str) else None
    if empty and isinstance(value, str) and not value.strip():
        return
    if items is None or not all(items):
        raise ConfigError(f"{field} must name fusion strategies (uniform, weighted, ae_kd, ...), comma-separated, "
                          f"got {value!r}")
    for name in items:
        if name.partition(":")[0] in ("rl", "none", "random"):
            raise ConfigError(f"{field} must name fusion strategies (uniform, weighted, ae_kd, ...), got {name!r}")
        try:
            strategies.get(name.partition(":")[0])
        except UnknownNameError as error:
            raise UnknownNameError(f"{field}: {error}") from None
    if len(set(items)) != len(items):
        raise ConfigError(f"{field} names a strategy twice: {value!r}")


@dataclasses.dataclass(frozen=True)
class PopulationConfig(DictConfig):
    """population: students per generation, each trained for `horizon` epochs (None: half the run's
    epochs, rounded up; chosen on the measured accuracy/cost curve: on four pools the second half
    of the run changed no selection and cost 1.4-1.9x more) from the teachers of its own random mask. generations: rounds of (draw masks from the
    policy, train, fit credit, update the policy); the credit pools every generation's students.
    reward: what a student returns at its run's end (`POPULATION_REWARDS`). exploration: masks draw
    teacher k with probability p_k clipped to [exploration, 1 - exploration]. init: where the policy
    starts (`mtkd.agents.selector_config.INITS`). policy_learning_rate: how far one noise unit of credit
    (t = effect / standard error) moves a teacher's logit; evidence_cap: the largest |t| used.
    apply: how the final policy's logits become weights (`mtkd.agents.ACTION_MODES`). per_example: the
    final students select per example (the learned policy reads no state, so the weights are the
    same as per batch). agent_seed: the population's seed; its students' seeds and masks come from
    it and a constant of their own, never from a student seed's stream. final_fusion and
    final_whole_pool: the reported students' candidates (the selected teachers under each of the
    first, the whole pool under each of the second), the best mean validation accuracy reported;
    the credit says which teachers help under uniform averaging, validation says how to weigh them."""

    population: int = setting(16, help="students per generation of the population selector")
    generations: int = setting(3, help="generations of the population selector")
    horizon: int | None = setting(None, help="epochs each population student trains (None: half the run's epochs, "
                                             "rounded up)")
    reward: str = setting("final_val_calibrated_loss",
                          help="population: final_val_calibrated_loss or final_val_accuracy, read at a student's "
                               "best validation epoch; joint and episodic: val_calibrated_loss_gain, val_loss_gain, "
                               "val_acc_gain, terminal_val_acc or neg_train_loss (per decision)")
    exploration: float = setting(0.25, help="population masks draw each teacher with its probability clipped "
                                            "to [exploration, 1 - exploration]")
    init: str = setting("all", help="where selection starts: above_chance, val_accuracy or all")
    policy_learning_rate: float = setting(2.0, help="population: logit moved per unit of evidence (t value)")
    evidence_threshold: float = setting(0.5, help="noise units of a gain that move nothing")
    evidence_cap: float = setting(6.0, help="largest step of one credit round, in noise units")
    apply: str = setting("greedy", help="how the policy's weights are used: expected, greedy or sample")
    fusion: str = setting("uniform", help="population: the fusion strategy the selected teachers are combined with "
                                          "(uniform, weighted, confidence, ae_kd, ...), or several, comma-separated: "
                                          "the population splits over them and the first is kept unless the "
                                          "evidence favours another")
    final_fusion: str | None = setting(None, help="population: the fusions the reported students may use over the "
                                                  "selected teachers, comma-separated (default: the one the "
                                                  "population read its credit under); with several candidates "
                                                  "(with final_whole_pool's) each trains the run's seeds and the "
                                                  "best mean validation accuracy is reported")
    final_whole_pool: str = setting("ae_kd", help="population: fusions also tried over every teacher of the pool "
                                                  "(the selection undone), comma-separated, chosen on validation "
                                                  "beside final_fusion's; \"\" tries none")
    per_example: bool = setting(False, help="select teachers per example, not per batch")
    agent_seed: int = setting(0, help="seed of the selector (population: its students' seeds and masks)")

    def __post_init__(self):
        from mtkd.agents.bernoulli import ACTION_MODES
        from mtkd.agents.selector_config import INITS

        _whole("population", self.population, 2)
        _whole("generations", self.generations, 1)
        if self.horizon is not None:
            _whole("horizon", self.horizon, 1)
        _whole("agent_seed", self.agent_seed, 0)
        POPULATION_REWARDS.get(self.reward)
        INITS.get(self.init)
        ACTION_MODES.get(self.apply)
        _number("exploration", self.exploration, 0.0, 0.5, open_low=True)
        _number("policy_learning_rate", self.policy_learning_rate, 0.0, 1e3, open_low=True)
        _number("evidence_cap", self.evidence_cap, 0.0, 1e3, open_low=True)
        _number("evidence_threshold", self.evidence_threshold, 0.0, 1e3)
        import mtkd.fusion  # noqa: F401  (registers the strategies)
        from mtkd.fusion.strategies import STRATEGIES

        _fusion_list("fusion", self.fusion, STRATEGIES, empty=False)
        if self.final_fusion is not None:
            _fusion_list("final_fusion", self.final_fusion, STRATEGIES, empty=False)
        _fusion_list("final_whole_pool", self.final_whole_pool, STRATEGIES, empty=True)
        if not isinstance(self.per_example, bool):
            raise ConfigError(f"per_example must be true or false, got {self.per_example!r}")

    def check_pool(self, num_teachers: int) -> None:
        """ConfigError before any work when one generation cannot estimate every teacher's effect
        and its noise (fewer students than teachers + 2)."""
        from mtkd.agents.population_credit import minimum_population

        need = minimum_population(num_teachers) + len(self.fusions) - 1
        if self.population < need:
            extra = f" + {len(self.fusions) - 1} more fusion(s)" if len(self.fusions) > 1 else ""
            raise ConfigError(f"population {self.population} is too small for {num_teachers} teachers{extra}: "
                              f"least-squares credit needs at least teachers + 2{extra} = {need} students per "
                              f"generation")

    @property
    def fusions(self) -> tuple[str, ...]:
        """The candidate fusions, the default first."""
        return _split(self.fusion)

    @property
    def final_fusions(self) -> tuple[str, ...] | None:
        """The candidate fusions over the selected teachers (None: the population's chosen one)."""
        return None if self.final_fusion is None else _split(self.final_fusion)

    @property
    def whole_pool_fusions(self) -> tuple[str, ...]:
        """The candidate fusions over every teacher of the pool."""
        return _split(self.final_whole_pool)

    def horizon_epochs(self, run_epochs: int) -> int:
        """Epochs each population student trains in a run of `run_epochs`."""
        return self.horizon if self.horizon is not None else -(-run_epochs // 2)

    def search_key(self) -> dict:
        """The options the population's runs depend on (not how the result is applied)."""
        return {k: v for k, v in self.to_dict().items() if k not in ("apply", "per_example", "final_fusion",
                                                                       "final_whole_pool")}

    def replace(self, **changes) -> "PopulationConfig":
        return dataclasses.replace(self, **changes)


__all__ = ["POPULATION_REWARDS", "PopulationConfig"]
