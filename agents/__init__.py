"""Teacher-selection agents: policies, baselines and REINFORCE training, plus the `rl` fusion
strategy (`mtkd.agents.rl_strategy`; registered in `mtkd.fusion.STRATEGIES` by `mtkd.selector_strategy`).

The names below are imported on first use (`mtkd.lazy_exports`): the command line builds its flags
from `mtkd.agents.config` and `mtkd.agents.selector_config` without importing JAX.
"""

from mtkd.lazy_exports import lazy_exports

__getattr__, __dir__, _NAMES = lazy_exports(__name__, {
    "mtkd.agents.baselines": ("BASELINES", "Baseline", "make_baseline"),
    "mtkd.agents.bernoulli": ("bernoulli_entropy", "bernoulli_log_prob", "greedy_actions", "sample_actions"),
    "mtkd.agents.checkpoint": ("PolicyMeta", "load_policy", "read_policy_meta", "save_policy"),
    "mtkd.agents.config": ("AgentConfig",),
    "mtkd.agents.evaluation": ("evaluate_policy",),
    "mtkd.agents.policies": ("POLICIES", "Policy", "make_policy", "policy_rows"),
    "mtkd.agents.reinforce": ("TrainOutput", "discounted_returns", "make_train"),
    "mtkd.agents.rl_strategy": ("make_rl_strategy",),
})
__all__ = _NAMES
