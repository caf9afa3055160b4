"""Fusion of teacher outputs: the soft-target average and the strategies that weight it."""

from mtkd.fusion.soft_targets import fuse_soft_targets
from mtkd.fusion.strategies import STRATEGIES, FusionStrategy, StrategyContext, StrategyInput, make_strategy

__all__ = ["fuse_soft_targets", "STRATEGIES", "FusionStrategy", "make_strategy", "StrategyContext", "StrategyInput"]
