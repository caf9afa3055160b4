"""Hyper-parameters of selector training (REINFORCE), validated on construction."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from mtkd.errors import ConfigError


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(options, Mapping):
        raise ConfigError(f"options must be a mapping, got {options!r}")
    return {str(k): tuple(v) if isinstance(v, list) else v for k, v in options.items()}


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """policy / policy_options: a name in `agents.POLICIES` and its options (e.g. mlp
    `{"hidden": [32]}`); baseline / baseline_options: a name in `agents.BASELINES`
    (moving_average takes `decay`); entropy_coef: weight of the mean Bernoulli entropy bonus;
    optimizer, learning_rate: the policy's optax optimizer (`mtkd.distill.OPTIMIZERS`);
    num_envs: students trained side by side per episode (one policy update per episode);
    num_episodes: policy updates; discount: gamma of the return-to-go (1: every later reward
    counts, 0: only the decision's own); normalize_advantages: divide advantages by their std
    over the episode; same_start: all N students of an episode start from the same reset key
    (same initial student and data order), so return differences come from actions alone.
    """

    policy: str = "logistic"
    policy_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    baseline: str = "leave_one_out"
    baseline_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    entropy_coef: float = 0.01
    optimizer: str = "adam"
    learning_rate: float = 0.05
    num_envs: int = 8
    num_episodes: int = 30
    discount: float = 1.0
    normalize_advantages: bool = True
    same_start: bool = True

    def __post_init__(self):
        from agents.baselines import make_baseline
        from agents.policies import make_policy
        from mtkd.optimizers import OPTIMIZERS

        object.__setattr__(self, "policy_options", _plain(self.policy_options))
        object.__setattr__(self, "baseline_options", _plain(self.baseline_options))
        for name in ("num_envs", "num_episodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not self.entropy_coef >= 0:
            raise ConfigError(f"entropy_coef must be >= 0, got {self.entropy_coef}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.discount <= 1.0:
            raise ConfigError(f"discount must be in [0, 1], got {self.discount}")
        OPTIMIZERS.get(self.optimizer)
        make_policy(self.policy, self.policy_options)  # unknown name or bad options fail here
        baseline = make_baseline(self.baseline, self.baseline_options)
        if self.num_envs < baseline.min_envs:
            raise ConfigError(f"baseline {self.baseline!r} needs at least {baseline.min_envs} parallel "
                              f"environments, got num_envs={self.num_envs}")

    def replace(self, **changes) -> "AgentConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (dict(getattr(self, f.name)) if isinstance(getattr(self, f.name), Mapping)
                         else getattr(self, f.name)) for f in dataclasses.fields(self)}
