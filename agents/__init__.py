"""Teacher-selection agents: policies, baselines and REINFORCE training, plus the `rl` fusion
strategy (`agents.rl_strategy`; registered in `mtkd.fusion.STRATEGIES` by `mtkd.selector_strategy`).

The names below are imported on first use (`mtkd.lazy_exports`): the command line builds its flags
from `agents.config` and `agents.selector_config` without importing JAX.
"""

from mtkd.lazy_exports import lazy_exports

_EXPORTS = {
    "AgentConfig": "agents.config",
    "BASELINES": "agents.baselines",
    "Baseline": "agents.baselines",
    "POLICIES": "agents.policies",
    "Policy": "agents.policies",
    "PolicyMeta": "agents.checkpoint",
    "TrainOutput": "agents.reinforce",
    "bernoulli_entropy": "agents.bernoulli",
    "bernoulli_log_prob": "agents.bernoulli",
    "discounted_returns": "agents.reinforce",
    "evaluate_policy": "agents.evaluation",
    "greedy_actions": "agents.bernoulli",
    "load_policy": "agents.checkpoint",
    "make_baseline": "agents.baselines",
    "make_policy": "agents.policies",
    "make_rl_strategy": "agents.rl_strategy",
    "make_train": "agents.reinforce",
    "policy_rows": "agents.policies",
    "read_policy_meta": "agents.checkpoint",
    "sample_actions": "agents.bernoulli",
    "save_policy": "agents.checkpoint",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
