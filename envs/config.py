"""Static configuration of the teacher-selection environment, validated on construction."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

from mtkd.config_flags import setting
from mtkd.errors import ConfigError
from mtkd.train_config import TrainConfig
from mtkd.typed_fields import check_fields

DEFAULT_STUDENT = {"arch": "mlp"}  # a ModelSpec's dict: `mtkd.models` (Flax) is imported when a config is made


def _spec_json(student: Any) -> str:
    """A `ModelSpec`, its dict or its JSON string, as canonical JSON (hashable, so the config
    can be a static jit argument)."""
    if isinstance(student, str):
        try:
            student = json.loads(student)
        except json.JSONDecodeError:
            student = {"arch": student}  # a bare architecture name such as "mlp"
    from mtkd.models import ModelSpec

    if isinstance(student, Mapping):
        student = ModelSpec.from_dict(student)
    if not isinstance(student, ModelSpec):
        raise ConfigError(f"student must be a ModelSpec, a dict or an architecture name, got {student!r}")
    return student.key()


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


# The student's training inside an episode: a `TrainConfig` (epochs = episode length), made when
# a config is (validating one imports the optimizers, and so JAX).
EPISODE_EPOCHS = 2
TRAIN_FIELDS = tuple(field.name for field in dataclasses.fields(TrainConfig))
ENV_FIELDS = ("student", "updates_per_decision", "reward", "eval_every", "val_subset", "per_example")  # checked below
# Every keyword `EnvConfig(...)`, `replace`, `make_env_params` and `mtkd.envs.make` take.
OPTION_NAMES = ENV_FIELDS + ("train",) + TRAIN_FIELDS


@dataclasses.dataclass(frozen=True, init=False)
class EnvConfig:
    """How one episode trains its student and what the agent sees and earns.

    train: the student's training (a `mtkd.train_config.TrainConfig`; its epochs are the episode's
    length, its batch size, optimizer, alpha and temperature those of the episode's student, and
    the observation's teacher-student KL uses the same temperature; docs/methods.md, Distillation
    objective). The environment's own fields: student: the student architecture (a `ModelSpec`,
    stored as canonical JSON so the config stays hashable). updates_per_decision: consecutive
    minibatches trained with one action (the observation describes all of them). reward: a name
    in `mtkd.envs.REWARDS`. eval_every: decisions between validation evaluations (the last decision is
    always evaluated). val_subset: evaluate on the first n validation examples only (None: all).
    per_example: one action per example and teacher instead of one per teacher.

    A `TrainConfig` field may also be given by its own name (`EnvConfig(epochs=3)`,
    `config.replace(temperature=2.0)`): it changes `train`, the one place it is kept. It reads
    back as an attribute too (`config.epochs`).
    """

    student: Any
    train: TrainConfig
    updates_per_decision: int = setting(1, help="minibatches trained with one selection")
    reward: str = setting("val_loss_gain", help="val_calibrated_loss_gain, val_loss_gain, val_acc_gain, "
                                                "terminal_val_acc or neg_train_loss")
    eval_every: int = setting(1, help="decisions between validation evaluations")
    val_subset: int | None = setting(None, help="evaluate rewards on the first N validation examples (None: all)")
    per_example: bool = setting(False, help="select teachers per example, not per batch")

    def __init__(self, student: Any = DEFAULT_STUDENT, train: TrainConfig | None = None, **options: Any):
        from mtkd.envs.rewards import REWARDS

        # The environment's own fields default as declared above; every other keyword is a
        # `TrainConfig` field, applied to `train`.
        own = {name: options.pop(name, ENV_DEFAULTS[name]) for name in ENV_FIELDS[1:]}
        train_changes = options
        unknown = sorted(set(train_changes) - set(TRAIN_FIELDS))
        if unknown:
            raise ConfigError(f"unknown environment option(s) {', '.join(unknown)}; known: {', '.join(OPTION_NAMES)}")
        train = TrainConfig(epochs=EPISODE_EPOCHS) if train is None else train
        if not isinstance(train, TrainConfig):
            raise ConfigError(f"train must be a TrainConfig, got {type(train).__name__}")
        for name, value in (("student", _spec_json(student)), ("train", train.replace(**train_changes)),
                            *own.items()):
            object.__setattr__(self, name, value)
        check_fields(self, "environment", skip=("student",))  # the student: checked by _spec_json
        for name in ("updates_per_decision", "eval_every"):
            _positive_int(name, getattr(self, name))
        if self.val_subset is not None:
            _positive_int("val_subset", self.val_subset)
        if not isinstance(self.per_example, bool):
            raise ConfigError(f"per_example must be True or False, got {self.per_example!r}")
        REWARDS.get(self.reward)  # UnknownNameError for an unknown reward

    def __getattr__(self, name: str):
        # The student's training settings read through to `train` (called only for names that
        # are not fields: epochs, batch_size, alpha, temperature, optimizer, learning_rate, ...).
        if name in TRAIN_FIELDS:
            return getattr(self.train, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"student": json.loads(self.student), "train": dataclasses.asdict(self.train),
                **{name: getattr(self, name) for name in ENV_FIELDS[1:]}}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "EnvConfig":
        """The inverse of `to_dict`; ConfigError names an unknown key (flat training keys allowed)."""
        raw = dict(raw)
        unknown = sorted(set(raw) - set(OPTION_NAMES))
        if unknown:
            raise ConfigError(f"unknown environment option(s) {', '.join(unknown)}; known: {', '.join(OPTION_NAMES)}")
        train = raw.pop("train", None)
        if isinstance(train, Mapping):
            extra = sorted(set(train) - set(TRAIN_FIELDS))
            if extra:
                raise ConfigError(f"unknown training option(s) {', '.join(extra)}; known: {', '.join(TRAIN_FIELDS)}")
            train = TrainConfig(**train)
        return cls(train=train, **raw)

    @property
    def student_spec(self):
        from mtkd.models import ModelSpec

        return ModelSpec.from_dict(json.loads(self.student))

    @property
    def examples_per_decision(self) -> int:
        return self.batch_size * self.updates_per_decision

    def replace(self, **changes) -> "EnvConfig":
        """A copy with `changes`: fields of its own, `train`, or `TrainConfig` fields by name."""
        own = {name: getattr(self, name) for name in ENV_FIELDS + ("train",)}
        own.update({name: changes.pop(name) for name in list(changes) if name in own})
        return EnvConfig(**own, **changes)


ENV_DEFAULTS = {field.name: field.default for field in dataclasses.fields(EnvConfig)}
assert ENV_FIELDS == tuple(name for name in ENV_DEFAULTS if name != "train"), "ENV_FIELDS lists the fields"
