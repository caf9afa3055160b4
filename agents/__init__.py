"""Teacher-selection agents: policies, baselines and REINFORCE training, plus the `rl` fusion
strategy (`agents.rl_strategy`; registered in `mtkd.fusion.STRATEGIES` by `mtkd.selector_strategy`)."""

from agents.baselines import BASELINES, Baseline, make_baseline
from agents.bernoulli import bernoulli_entropy, bernoulli_log_prob, greedy_actions, sample_actions
from agents.checkpoint import PolicyMeta, load_policy, read_policy_meta, save_policy
from agents.config import AgentConfig
from agents.evaluation import evaluate_policy
from agents.policies import POLICIES, Policy, make_policy, policy_rows
from agents.reinforce import TrainOutput, discounted_returns, make_train
from agents.rl_strategy import make_rl_strategy

__all__ = [
    "AgentConfig", "BASELINES", "Baseline", "POLICIES", "Policy", "PolicyMeta", "TrainOutput",
    "bernoulli_entropy", "bernoulli_log_prob", "discounted_returns", "evaluate_policy", "greedy_actions", "load_policy",
    "make_baseline", "make_policy", "make_rl_strategy", "make_train", "policy_rows", "read_policy_meta",
    "sample_actions", "save_policy",
]
