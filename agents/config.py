"""Hyper-parameters of selector training (REINFORCE), validated on construction."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from mtkd.config_flags import DictConfig, setting
from mtkd.errors import ConfigError


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(options, Mapping):
        raise ConfigError(f"options must be a mapping, got {options!r}")
    return {str(k): tuple(v) if isinstance(v, list) else v for k, v in options.items()}


@dataclasses.dataclass(frozen=True)
class AgentConfig(DictConfig):
    """Named as the joint selector's `SelectorConfig` where the setting is the same (policy_arch,
    policy_options, policy_optimizer, policy_learning_rate), and as the flags of `mtkd select train`
    and the keys of an ablation's `[rl]` section.

    policy_arch / policy_options: a name in `mtkd.agents.POLICIES` and its options (e.g. mlp
    `{"hidden": [32]}`); baseline / baseline_options: a name in `mtkd.agents.BASELINES`
    (moving_average takes `decay`); entropy_coef: weight of the mean Bernoulli entropy bonus;
    policy_optimizer, policy_learning_rate: the policy's optax optimizer (`mtkd.optimizers`);
    num_envs: students trained side by side per episode (one policy update per episode);
    episodes: policy updates; discount: gamma of the return-to-go (1: every later reward
    counts, 0: only the decision's own); normalize_advantages: divide advantages by their std
    over the episode; same_start: all N students of an episode start from the same reset key
    (same initial student and data order), so return differences come from actions alone.
    """

    policy_arch: str = setting("logistic", help="selector policy: teacher_logistic, logistic, mlp or teacher_bias")
    policy_options: Mapping[str, Any] = setting(help="the policy's options as JSON, e.g. '{\"hidden\": [32]}' for mlp",
                                                default_factory=dict)
    baseline: str = setting("leave_one_out", help="REINFORCE baseline: leave_one_out, moving_average or none")
    baseline_options: Mapping[str, Any] = setting(help="the baseline's options as JSON, e.g. '{\"decay\": 0.9}'",
                                                  default_factory=dict)
    entropy_coef: float = setting(0.01, help="weight of the policy's entropy bonus")
    policy_optimizer: str = setting("adam", help="the policy's optimizer")
    policy_learning_rate: float = setting(0.05, help="the policy's learning rate")
    num_envs: int = setting(8, help="students trained side by side per episode")
    episodes: int = setting(30, help="episodes, one policy update each")
    discount: float = setting(1.0, help="discount of the return-to-go, in [0, 1]")
    normalize_advantages: bool = setting(True, help="divide advantages by their std over the episode")
    same_start: bool = setting(True, help="all students of an episode start alike (same reset key)")

    def __post_init__(self):
        from mtkd.agents.baselines import make_baseline
        from mtkd.agents.policies import make_policy
        from mtkd.optimizers import OPTIMIZERS

        object.__setattr__(self, "policy_options", _plain(self.policy_options))
        object.__setattr__(self, "baseline_options", _plain(self.baseline_options))
        for name in ("num_envs", "episodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not self.entropy_coef >= 0:
            raise ConfigError(f"entropy_coef must be >= 0, got {self.entropy_coef}")
        if not self.policy_learning_rate > 0:
            raise ConfigError(f"policy_learning_rate must be > 0, got {self.policy_learning_rate}")
        if not 0.0 <= self.discount <= 1.0:
            raise ConfigError(f"discount must be in [0, 1], got {self.discount}")
        OPTIMIZERS.get(self.policy_optimizer)
        make_policy(self.policy_arch, self.policy_options)  # unknown name or bad options fail here
        baseline = make_baseline(self.baseline, self.baseline_options)
        if self.num_envs < baseline.min_envs:
            raise ConfigError(f"baseline {self.baseline!r} needs at least {baseline.min_envs} parallel "
                              f"environments, got num_envs={self.num_envs}")

    def replace(self, **changes) -> "AgentConfig":
        return dataclasses.replace(self, **changes)
