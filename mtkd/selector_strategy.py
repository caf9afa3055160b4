"""The one place where the learned selector becomes the `rl` fusion strategy.

`rl` is written against the environment and the agents (`mtkd.agents.rl_strategy`), which sit above the
fusion and trainer layers, so its registration belongs to the application layer: `mtkd` (the CLI)
imports this module before running a command, and so does `mtkd.ablation`. A script that builds
`rl` by name through `mtkd.distill.experiment.build_strategies` imports it too.
"""

from mtkd.agents.rl_strategy import rl_strategy
from mtkd.fusion.strategies import STRATEGIES

if "rl" not in STRATEGIES:  # a reload must not register twice
    STRATEGIES.add("rl", rl_strategy)
