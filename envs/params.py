"""`EnvParams`: everything an episode reads and never changes (cached teacher logits, data,
configuration), built and validated by `make_env_params`."""

from __future__ import annotations

import functools
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from mtkd.envs.config import EnvConfig
from mtkd.envs.observation import TeacherTable, teacher_table
from mtkd.errors import ConfigError
from mtkd.models import ModelSpec, build_model
from mtkd.models.architectures import parameters_only_model


@struct.dataclass
class EnvParams:
    """Teacher logits train (K, N, C) / val (K, N_val, C); inputs x_train (N, ...) / x_val;
    int32 labels y_train (N,) / y_val (N_val,); `initial_student`: parameters every episode
    starts from (a warm-started student), or None for a fresh student drawn from the reset
    key; `config` is static (not traced); `teacher_table`: the teachers' per-example features and
    soft targets on the training split, computed once (`mtkd.envs.observation.teacher_table`). The
    validation teacher logits are kept for rewards or features that compare teachers on
    validation; the built-in ones do not read them."""

    teacher_logits_train: jax.Array
    teacher_logits_val: jax.Array
    x_train: jax.Array
    y_train: jax.Array
    x_val: jax.Array
    y_val: jax.Array
    initial_student: Any = None
    config: EnvConfig = struct.field(pytree_node=False, default_factory=EnvConfig)
    teacher_table: TeacherTable | None = None

    @property
    def table(self) -> TeacherTable:
        """The training split's `TeacherTable` at the configured temperature: the one computed by
        `make_env_params`, or (for params whose temperature was replaced since) a fresh one."""
        table = self.teacher_table
        if table is not None and table.temperature == self.config.temperature:
            return table
        return teacher_table(self.teacher_logits_train, self.y_train, self.config.temperature)

    @property
    def num_teachers(self) -> int:
        return self.teacher_logits_train.shape[0]

    @property
    def num_classes(self) -> int:
        return self.teacher_logits_train.shape[-1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def decisions_per_epoch(self) -> int:
        """Full groups of `updates_per_decision` minibatches per epoch (the remainder is dropped)."""
        return (self.x_train.shape[0] // self.config.batch_size) // self.config.updates_per_decision

    @property
    def num_decisions(self) -> int:
        """Decisions in one episode."""
        return self.config.epochs * self.decisions_per_epoch


@functools.lru_cache(maxsize=32)
def _cached_student(spec_json: str, input_shape: tuple[int, ...], num_classes: int):
    """(graphdef, abstract params) of the student; built once per architecture (outside jit)."""
    spec = ModelSpec.from_dict(json.loads(spec_json))
    return nnx.split(parameters_only_model(spec, input_shape, num_classes, "the joint selector's environment"))


def student_graphdef(params: EnvParams):
    """The student's static graph definition (never part of a traced pytree)."""
    return _cached_student(params.config.student, params.input_shape, params.num_classes)[0]


def init_student(params: EnvParams, key: jax.Array):
    """Fresh student parameters drawn from `key` (jit-able)."""
    spec = params.config.student_spec
    model = build_model(spec, params.input_shape, params.num_classes, nnx.Rngs(params=key))
    return nnx.split(model)[1]


_teacher_table = jax.jit(teacher_table, static_argnums=2)


def make_env_params(teacher_logits_train, teacher_logits_val, x_train, y_train, x_val, y_val,
                    config: EnvConfig | None = None, initial_student=None, **config_changes) -> EnvParams:
    """Validated `EnvParams` from in-memory arrays (numpy or JAX); keyword arguments replace
    fields of `config` (default `EnvConfig()`). Raises ConfigError for inconsistent shapes,
    labels outside the teachers' classes, too few examples for one decision, or an
    `initial_student` that does not fit the student architecture."""
    config = (config or EnvConfig()).replace(**config_changes) if config_changes else (config or EnvConfig())
    arrays = [np.asarray(a) for a in (teacher_logits_train, teacher_logits_val, x_train, y_train, x_val, y_val)]
    logits_train, logits_val, x_train, y_train, x_val, y_val = arrays
    if logits_train.ndim != 3 or logits_val.ndim != 3:
        raise ConfigError(f"teacher logits must be (K, N, C); got {logits_train.shape} and {logits_val.shape}")
    num_teachers, num_train, num_classes = logits_train.shape
    if num_teachers < 1:
        raise ConfigError("the teacher pool is empty")
    if logits_val.shape[0] != num_teachers or logits_val.shape[2] != num_classes:
        raise ConfigError(f"validation teacher logits {logits_val.shape} do not match train {logits_train.shape}")
    for split, x, y, n in (("train", x_train, y_train, num_train), ("val", x_val, y_val, logits_val.shape[1])):
        if x.shape[0] != n or y.shape != (n,):
            raise ConfigError(f"{split}: {x.shape[0]} inputs and labels {y.shape} for {n} teacher outputs")
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ConfigError(f"{split} labels range over [{y.min()}, {y.max()}] but the teachers give "
                              f"{num_classes} classes: the pool does not match the data set")
    if x_train.shape[1:] != x_val.shape[1:]:
        raise ConfigError(f"train inputs {x_train.shape[1:]} and val inputs {x_val.shape[1:]} differ in shape")
    if num_train < config.examples_per_decision:
        raise ConfigError(f"one decision needs batch_size * updates_per_decision = {config.examples_per_decision} "
                          f"training examples; only {num_train} given")
    if config.val_subset is not None and config.val_subset > x_val.shape[0]:
        raise ConfigError(f"val_subset {config.val_subset} exceeds the {x_val.shape[0]} validation examples")
    params = EnvParams(
        jnp.asarray(logits_train, jnp.float32), jnp.asarray(logits_val, jnp.float32),
        jnp.asarray(x_train, jnp.float32), jnp.asarray(y_train, jnp.int32),
        jnp.asarray(x_val, jnp.float32), jnp.asarray(y_val, jnp.int32),
        None, config)
    params = params.replace(teacher_table=_teacher_table(params.teacher_logits_train, params.y_train,
                                                         config.temperature))
    if initial_student is not None:
        _check_student(params, initial_student)
        params = params.replace(initial_student=jax.tree.map(jnp.asarray, initial_student))
    return params


def _check_student(params: EnvParams, student) -> None:
    expected = _cached_student(params.config.student, params.input_shape, params.num_classes)[1]
    expected_shapes = jax.tree.map(lambda leaf: tuple(leaf.shape), expected)
    try:
        given_shapes = jax.tree.map(lambda leaf: tuple(np.shape(leaf)), student)
        same = jax.tree.structure(given_shapes) == jax.tree.structure(expected_shapes) and \
            jax.tree.leaves(given_shapes) == jax.tree.leaves(expected_shapes)
    except Exception:  # noqa: BLE001  (any malformed pytree is a mismatch)
        same = False
    if not same:
        raise ConfigError("initial_student does not match the student architecture "
                          f"{params.config.student_spec.to_dict()} for inputs {params.input_shape}")
