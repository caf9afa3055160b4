"""Teacher-selection agents: policies, baselines and REINFORCE training, plus the `rl` fusion
strategy (`agents.rl_strategy`; registered in `mtkd.fusion.STRATEGIES` by `mtkd.selector_strategy`).

The names below are imported on first use (`mtkd.lazy_exports`): the command line builds its flags
from `agents.config` and `agents.selector_config` without importing JAX.
"""

from mtkd.lazy_exports import lazy_exports

__getattr__, __dir__, _NAMES = lazy_exports(__name__, {
    "agents.baselines": ("BASELINES", "Baseline", "make_baseline"),
    "agents.bernoulli": ("bernoulli_entropy", "bernoulli_log_prob", "greedy_actions", "sample_actions"),
    "agents.checkpoint": ("PolicyMeta", "load_policy", "read_policy_meta", "save_policy"),
    "agents.config": ("AgentConfig",),
    "agents.evaluation": ("evaluate_policy",),
    "agents.policies": ("POLICIES", "Policy", "make_policy", "policy_rows"),
    "agents.reinforce": ("TrainOutput", "discounted_returns", "make_train"),
    "agents.rl_strategy": ("make_rl_strategy",),
})
__all__ = _NAMES
