"""Options of the joint selector (`mtkd.agents.joint`), validated on construction.

One name per setting: the field, the ablation's `[rl]` key and the `mtkd select train` flag
(`--credit-every` for `credit_every`) are the same word.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from mtkd.config_flags import DictConfig, setting
from mtkd.errors import ConfigError
from mtkd.registry import Registry

# Where each teacher's selection probability starts (before any credit is measured), from the
# teachers' validation accuracies and the number of classes; every start is clipped to [0.05, 0.95].
INITS: Registry = Registry("selector init")


def _clipped(values) -> list[float]:
    return [min(max(float(v), 0.05), 0.95) for v in values]


# Cohen's kappa against chance: (accuracy - 1/C) / (1 - 1/C). A teacher no better than guessing
# starts near 0 whatever C is; a perfect one near 1.
INITS.add("above_chance", lambda accuracies, classes: _clipped(
    (float(a) - 1.0 / classes) / (1.0 - 1.0 / classes) for a in accuracies))
INITS.add("val_accuracy", lambda accuracies, classes: _clipped(accuracies))
INITS.add("all", lambda accuracies, classes: [0.9] * len(accuracies))


def start_logits(init: str, teacher_val_accuracy, num_classes: int):
    """The logits (float64, K) of the start `init` (a name in `INITS`): log(p / (1 - p))."""
    import numpy as np

    probability = np.asarray(INITS.get(init)(teacher_val_accuracy, num_classes), np.float64)
    return np.log(probability / (1.0 - probability))


@dataclasses.dataclass(frozen=True)
class SelectorConfig(DictConfig):
    """policy_arch / policy_options: a name in `mtkd.agents.POLICIES` (default `teacher_logistic`) and its
    options. reward: a name in `mtkd.envs.REWARDS`, summed over one epoch of decisions (default
    `val_calibrated_loss_gain`: the drop of the temperature-calibrated validation loss over the
    epoch). apply: how the policy's logits become the weights the student trains with
    (`mtkd.agents.ACTION_MODES`: expected, greedy, sample). init: where selection starts
    (`above_chance`: each teacher's validation accuracy above chance, (acc - 1/C) / (1 - 1/C);
    `val_accuracy`: the accuracy itself; `all`: 0.9 for every teacher; each clipped to
    [0.05, 0.95]). credit_every: epochs between counterfactual credit rounds; each round costs
    K + 1 branches of credit_horizon epochs, so the default (None) is K + 1, half an extra epoch per
    epoch whatever the pool's size; 0 never learns (the initial policy applied as it is). credit_horizon: how long a
    credit branch runs, in epochs (default 0.5: half an epoch's decisions, evaluated once at the
    end). evidence_threshold /
    evidence_cap: a round moves a teacher's logit by policy_learning_rate times its gain in noise
    units, soft-thresholded at evidence_threshold and capped at evidence_cap
    (`mtkd.agents.credit.evidence`). policy_learning_rate / policy_optimizer: the policy's optax
    optimizer (`plain_sgd` by default: the step is already in units of evidence, where Adam would
    take full steps on noise). per_example: one selection per example instead of per batch.
    norm_decay: how fast the policy's feature statistics and the gain-noise estimate follow the
    student (weight of the old ones per credit round). agent_seed: selector seed i trains beside
    student seed i with key `agent_seed + i`; it draws the credit rounds' batch orders."""

    policy_arch: str = setting("teacher_logistic", help="selector policy: teacher_logistic, logistic, mlp or teacher_bias")
    policy_options: Mapping[str, Any] = setting(help="the policy's options as JSON, e.g. '{\"hidden\": [32]}' for mlp",
                                                default_factory=dict)
    reward: str = setting("val_calibrated_loss_gain",
                          help="val_calibrated_loss_gain, val_loss_gain, val_acc_gain, terminal_val_acc or "
                               "neg_train_loss")
    apply: str = setting("expected", help="how the policy's weights are used: expected, greedy or sample")
    init: str = setting("above_chance", help="where selection starts: above_chance, val_accuracy or all")
    credit_every: int | None = setting(None, help="epochs between credit rounds (None: the number of teachers + 1; "
                                                  "0: never learn)")
    credit_horizon: float = setting(0.5, help="epochs each credit branch runs before its reward is read")
    evidence_threshold: float = setting(1.5, help="noise units of a gain that move nothing")
    evidence_cap: float = setting(6.0, help="largest step of one credit round, in noise units")
    policy_learning_rate: float = setting(0.1, help="the policy's learning rate")
    policy_optimizer: str = setting("plain_sgd", help="the policy's optimizer")
    per_example: bool = setting(False, help="select teachers per example, not per batch")
    norm_decay: float = setting(0.9, help="how fast feature statistics and noise estimates follow the student")
    agent_seed: int = setting(0, help="seed of selector training; joint: selector i has seed agent_seed + i")

    def __post_init__(self):
        from mtkd.agents.bernoulli import ACTION_MODES
        from mtkd.agents.policies import make_policy
        from mtkd.envs.rewards import REWARDS
        from mtkd.optimizers import OPTIMIZERS

        object.__setattr__(self, "policy_options", dict(self.policy_options))
        make_policy(self.policy_arch, self.policy_options)
        reward = REWARDS.get(self.reward)
        if reward.terminal_only:
            raise ConfigError(f"reward {self.reward!r} is paid only at an episode's end; the joint selector "
                              f"needs a reward per epoch (val_calibrated_loss_gain, val_acc_gain, val_loss_gain or "
                              f"neg_train_loss)")
        ACTION_MODES.get(self.apply)
        INITS.get(self.init)
        OPTIMIZERS.get(self.policy_optimizer)
        checked = {"agent_seed": self.agent_seed}
        if self.credit_every is not None:  # None: the pool's size (`rounds_every`)
            checked["credit_every"] = self.credit_every
        for name, value in checked.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
        for name in ("policy_learning_rate", "evidence_cap", "credit_horizon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be > 0, got {value!r}")
        threshold = self.evidence_threshold
        if isinstance(threshold, bool) or not (isinstance(threshold, (int, float)) and math.isfinite(threshold)
                                               and threshold >= 0):
            raise ConfigError(f"evidence_threshold must be >= 0, got {threshold!r}")
        if not 0.0 <= self.norm_decay < 1.0:
            raise ConfigError(f"norm_decay must be in [0, 1), got {self.norm_decay}")
        if not isinstance(self.per_example, bool):
            raise ConfigError(f"per_example must be true or false, got {self.per_example!r}")

    def rounds_every(self, num_teachers: int) -> int:
        """Epochs between credit rounds for a pool of `num_teachers` (0: never)."""
        return num_teachers + 1 if self.credit_every is None else self.credit_every

    def replace(self, **changes) -> "SelectorConfig":
        return dataclasses.replace(self, **changes)
