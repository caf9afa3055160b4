"""Hyper-parameters of one training run, validated on construction."""

from __future__ import annotations

import dataclasses

from mtkd.config_flags import DictConfig, setting
from mtkd.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TrainConfig(DictConfig):
    """Student (or teacher) training. Defaults follow docs/methods.md, Distillation objective (MNIST-1D calibration):
    Adam 1e-3, batch 128, 150 epochs, alpha 0.3, T = 8 (T = 8 beat T = 4 for the uniform
    average there and here: 64.8 vs 63.4 on the default pool, 3 seeds)."""

    epochs: int = setting(150, help="training epochs")
    batch_size: int = setting(128, help="batch size")
    learning_rate: float = setting(1e-3, help="learning rate")
    optimizer: str = setting("adam", help="optimizer: adam, adamw, sgd or plain_sgd")
    weight_decay: float = setting(0.0, help="weight decay >= 0 (adam with decay is adamw; sgd adds it to the gradient)")
    alpha: float = setting(0.3, help="weight of the hard-label cross-entropy, in [0, 1]")
    temperature: float = setting(8.0, help="softmax temperature T > 0 of the soft targets")
    eval_batch_size: int = setting(1024, help="examples per chunk when evaluating")
    lr_milestones: str = setting("", help="epochs after which the learning rate is multiplied by lr_decay, "
                                          "comma-separated (PyTorch's MultiStepLR), e.g. 150,180,210; empty: constant")
    lr_decay: float = setting(0.1, help="factor in (0, 1] applied at each of lr_milestones")
    augment: str = setting("", help="data augmentation inside the training step, from per-seed keys: "
                                    "crop_flip (random crop after zero padding by 4, horizontal flip; images); "
                                    "empty: none")
    vmap_chunk: int = setting(0, help="at most this many students (seeds, best_subset's subsets, the selector's "
                                      "population) train side by side per device, the rest in turn inside the same "
                                      "program, to bound memory; 0: as many as fit a share of the machine's memory. Not part of a "
                                      "run's signature: it changes how the work is batched, not what is computed")

    def __post_init__(self):
        from mtkd.optimizers import OPTIMIZERS

        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1], got {self.alpha}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if self.vmap_chunk < 0:
            raise ConfigError(f"vmap_chunk must be >= 0 (0: as many as fit), got {self.vmap_chunk}")
        if self.eval_batch_size < 1:
            raise ConfigError(f"eval_batch_size must be at least 1, got {self.eval_batch_size}")
        OPTIMIZERS.get(self.optimizer)
        milestones = self.milestones()
        # A milestone at or past the last epoch never applies (a recipe shortened with --epochs).
        if any(m < 1 for m in milestones) or list(milestones) != sorted(set(milestones)):
            raise ConfigError(f"lr_milestones must be increasing epochs >= 1, got {self.lr_milestones!r}")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ConfigError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if self.augment:
            from mtkd.augment import AUGMENTATIONS

            AUGMENTATIONS.get(self.augment)

    def signature(self) -> dict:
        """The fields as a run's signature holds them: the schedule and augmentation only when set,
        so that runs and caches made before those fields existed stay the same run; never
        `vmap_chunk`, which says how students are batched on the device, as `devices` says where."""
        data = self.to_dict()
        del data["vmap_chunk"]
        for key in ("lr_milestones", "lr_decay", "augment"):
            if data[key] == getattr(TrainConfig, key):
                del data[key]
        return data

    def refuse_augmentation(self, method: str) -> None:
        """For the trainers with a batch loop of their own (deep mutual learning, BYOT)."""
        if self.augment:
            raise ConfigError(f"augment = {self.augment!r}: {method} trains without augmentation; leave augment empty")

    def milestones(self) -> tuple[int, ...]:
        """`lr_milestones` as epochs."""
        if not self.lr_milestones.strip():
            return ()
        try:
            return tuple(int(part) for part in self.lr_milestones.split(","))
        except ValueError:
            raise ConfigError(f"lr_milestones must be whole epochs separated by commas, got {self.lr_milestones!r}") from None

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)
