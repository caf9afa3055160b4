"""A trained selector policy on disk: Orbax parameters plus `policy.json`, which says what the
policy reads (teachers, observation layout) so a mismatched pool is refused, never guessed.

Layout of a policy directory: `policy.json` and `params/` (an Orbax checkpoint whose checksum is
recorded in `policy.json`). Loading only reads.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mtkd.agents.policies import Policy, make_policy
from mtkd.envs.observation import SHARED_FEATURES, TEACHER_FEATURES, observation_size
from mtkd.checkpoints import restore_params, save_params
from mtkd.errors import CheckpointError, MtkdError, OutputExistsError

POLICY_FILE = "policy.json"
PARAMS_DIR = "params"
POLICY_FORMAT = "mtkd-policy/1"


@dataclasses.dataclass(frozen=True)
class PolicyMeta:
    """What a saved policy needs to be used: its name and options, the number of teachers K, the
    observation row size and layout (per_example, the KL temperature), and the pool's teacher
    names (informative: a policy is checked against K and the observation size)."""

    policy: str
    policy_options: Mapping[str, Any]
    num_teachers: int
    observation_size: int
    per_example: bool
    temperature: float
    teacher_names: Sequence[str]
    apply: str = "sample"  # how `rl` turns logits into weights unless told otherwise (mtkd.agents.ACTION_MODES)
    fusion: str = "uniform"  # the fusion strategy the selected teachers are combined with

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["policy_options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.policy_options.items()}
        data["teacher_names"] = list(self.teacher_names)
        return data

    def build(self) -> Policy:
        return make_policy(self.policy, self.policy_options)


def save_policy(directory: str | Path, params: Any, meta: PolicyMeta, extra: Mapping[str, Any] | None = None) -> Path:
    """Writes `params` and `meta` (plus `extra`, e.g. the training configs) to a new `directory`."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise OutputExistsError(f"policy directory {directory} is not empty; choose another")
    directory.mkdir(parents=True, exist_ok=True)
    checksum = save_params(directory / PARAMS_DIR, jax.tree.map(jnp.asarray, params))
    payload = {"format": POLICY_FORMAT, **meta.to_dict(), "checksum": checksum,
               "features": {"teacher": list(TEACHER_FEATURES), "shared": list(SHARED_FEATURES)},
               **dict(extra or {})}
    (directory / POLICY_FILE).write_text(json.dumps(payload, indent=2) + "\n")
    return directory


# Where a run keeps its policy, relative to the run directory: `mtkd select train`'s, an ablation's.
RUN_POLICY_FOLDERS = ("policy", "selector/rl/policy")


def policy_directory(directory: str | Path) -> Path:
    """The folder holding policy.json: `directory` itself, or the policy of the run in it (so that
    `--policy RUN_DIR` works as well as `--policy RUN_DIR/policy`)."""
    directory = Path(directory)
    if (directory / POLICY_FILE).is_file():
        return directory
    for folder in RUN_POLICY_FOLDERS:
        if (directory / folder / POLICY_FILE).is_file():
            return directory / folder
    return directory


def read_policy_meta(directory: str | Path) -> tuple[PolicyMeta, dict]:
    """(meta, the whole policy.json); CheckpointError when missing, corrupt or of another format."""
    directory = policy_directory(directory)
    path = Path(directory) / POLICY_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory} holds no selector policy ({POLICY_FILE} is missing); "
                              f"train one with `mtkd select train`")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != POLICY_FORMAT:
            raise CheckpointError(f"{path} has format {data.get('format')!r}, expected {POLICY_FORMAT!r}")
        meta = PolicyMeta(str(data["policy"]), dict(data["policy_options"]), int(data["num_teachers"]),
                          int(data["observation_size"]), bool(data["per_example"]), float(data["temperature"]),
                          list(data["teacher_names"]), str(data.get("apply", "sample")),
                          str(data.get("fusion", "uniform")))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{path} is not a valid policy description: {type(error).__name__}: {error}") from None
    if meta.observation_size != observation_size(meta.num_teachers, meta.per_example):
        raise CheckpointError(f"{path}: observation size {meta.observation_size} does not fit {meta.num_teachers} "
                              f"teachers with this version's features "
                              f"({observation_size(meta.num_teachers, meta.per_example)})")
    return meta, data


def load_policy(directory: str | Path) -> tuple[Policy, Any, PolicyMeta]:
    """(policy, params, meta) of the policy saved in `directory` (or in the run directory `directory`)."""
    directory = policy_directory(directory)
    meta, data = read_policy_meta(directory)
    try:
        policy = meta.build()
    except MtkdError as error:
        raise CheckpointError(f"{directory}: {error}") from None
    abstract = jax.eval_shape(lambda key: policy.init(key, meta.observation_size, meta.num_teachers),
                              jax.random.key(0))
    params = restore_params(Path(directory) / PARAMS_DIR, abstract, data.get("checksum"))
    # Orbax hands numpy-saved arrays back in their stored shapes whatever the target says: check.
    expected = jax.tree.map(lambda leaf: tuple(leaf.shape), abstract)
    if jax.tree.map(lambda leaf: tuple(np.shape(leaf)), params) != expected:
        raise CheckpointError(f"checkpoint {Path(directory) / PARAMS_DIR} is corrupt or does not match the "
                              f"policy described in {POLICY_FILE}: parameter shapes differ")
    return policy, jax.tree.map(jnp.asarray, params), meta
