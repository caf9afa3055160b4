"""Static configuration of the teacher-selection environment, validated on construction."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

from mtkd.errors import ConfigError
from mtkd.models import ModelSpec

DEFAULT_STUDENT = ModelSpec("mlp")


def _spec_json(student: Any) -> str:
    """A `ModelSpec`, its dict or its JSON string, as canonical JSON (hashable, so the config
    can be a static jit argument)."""
    if isinstance(student, str):
        try:
            student = json.loads(student)
        except json.JSONDecodeError:
            student = {"arch": student}  # a bare architecture name such as "mlp"
    if isinstance(student, Mapping):
        student = ModelSpec.from_dict(student)
    if not isinstance(student, ModelSpec):
        raise ConfigError(f"student must be a ModelSpec, a dict or an architecture name, got {student!r}")
    return student.key()


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """How one episode trains its student and what the agent sees and earns.

    student: the student architecture (a `ModelSpec`, stored as canonical JSON so the config
    stays hashable). epochs: student epochs per episode. batch_size: examples per student update.
    updates_per_decision: consecutive minibatches trained with one action (the observation
    describes all of them). reward: a name in `envs.REWARDS`. eval_every: decisions between
    validation evaluations (the last decision is always evaluated). val_subset: evaluate on the
    first n validation examples only (None: all). per_example: one action per example and
    teacher instead of one per teacher. alpha, temperature: the distillation objective
    (docs/methods.md, Distillation objective); the observation's teacher-student KL uses the same temperature.
    optimizer, learning_rate, weight_decay: the student's optimizer (`mtkd.distill.OPTIMIZERS`).
    """

    student: Any = DEFAULT_STUDENT
    epochs: int = 2
    batch_size: int = 128
    updates_per_decision: int = 1
    reward: str = "val_loss_gain"
    eval_every: int = 1
    val_subset: int | None = None
    per_example: bool = False
    alpha: float = 0.3
    temperature: float = 8.0
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0

    def __post_init__(self):
        from envs.rewards import REWARDS
        from mtkd.optimizers import OPTIMIZERS

        object.__setattr__(self, "student", _spec_json(self.student))
        for name in ("epochs", "batch_size", "updates_per_decision", "eval_every"):
            _positive_int(name, getattr(self, name))
        if self.val_subset is not None:
            _positive_int("val_subset", self.val_subset)
        if not isinstance(self.per_example, bool):
            raise ConfigError(f"per_example must be True or False, got {self.per_example!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1], got {self.alpha}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        REWARDS.get(self.reward)  # UnknownNameError for an unknown reward
        OPTIMIZERS.get(self.optimizer)

    @property
    def student_spec(self) -> ModelSpec:
        return ModelSpec.from_dict(json.loads(self.student))

    @property
    def examples_per_decision(self) -> int:
        return self.batch_size * self.updates_per_decision

    def replace(self, **changes) -> "EnvConfig":
        return dataclasses.replace(self, **changes)
