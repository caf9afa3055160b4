"""The ablation runner: every baseline under one protocol, with tables and plots."""

import mtkd.selector_strategy  # noqa: F401  (the `rl` strategy, registered once there)
from mtkd.ablation.config import AblationConfig, ablation_config_from_dict, load_ablation_config
from mtkd.ablation.run import run_ablation
from mtkd.ablation.runners import RUNNERS

__all__ = ["AblationConfig", "ablation_config_from_dict", "load_ablation_config", "run_ablation", "RUNNERS"]
from mtkd.ablation import best_subset  # noqa: E402,F401  (registers the best_subset runner)
