"""Fusion of teacher outputs: the soft-target average and the strategies that weight it."""

from mtkd.fusion.soft_targets import fuse_soft_targets
from mtkd.fusion.strategies import STRATEGIES, FusionStrategy, StrategyContext, StrategyInput, make_strategy
# The published weighting methods register themselves in STRATEGIES on import.
from mtkd.fusion import ae_kd, ca_mkd, ebkd, mmkd, mtkd_rl, val_acc_weighted_confidence  # noqa: E402,F401

__all__ = ["fuse_soft_targets", "STRATEGIES", "FusionStrategy", "make_strategy", "StrategyContext", "StrategyInput"]
