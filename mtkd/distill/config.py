"""`TrainConfig` lives with the foundations (`mtkd.train_config`: teacher specs use it too); this
name stays for the trainer's callers."""

from mtkd.train_config import TrainConfig

__all__ = ["TrainConfig"]
