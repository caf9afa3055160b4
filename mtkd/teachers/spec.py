"""Teacher-pool specifications: which teachers to train, and how (deliberately uneven if asked).

A spec is a TOML or YAML file, or the name of a preset shipped in `mtkd/teachers/presets/`:

    [defaults]              # applies to every teacher unless it says otherwise
    epochs = 40
    learning_rate = 1e-3

    [[teachers]]
    name = "cnn"
    arch = "cnn1d"          # a model of the registry ...
    options = { channels = [32, 32, 32] }
    learning_rate = 1e-2
    data_fraction = 1.0     # train on this fraction of the training split
    label_noise = 0.0       # corrupt this fraction of training labels (a misleading teacher)
    class_permutation = [1, 0, 2, ...]  # train on permuted labels y -> p[y] (a misleading teacher)

    [[teachers]]
    name = "from_pytorch"
    external = "logits.npz" # ... or precomputed logits (see the README's external format)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from mtkd.config_files import CONFIG_SUFFIXES, read_config_file
from mtkd.errors import ConfigError, UnknownNameError
from mtkd.models import ModelSpec
from mtkd.teachers.defaults import PRESET_DIR, preset_names
from mtkd.train_config import TrainConfig
from mtkd.typed_fields import check_fields, check_value

# The `TrainConfig` fields a pool file may set per teacher (given flat, as `epochs = 40`), and the
# teacher's own: which data it sees.
# The schedule and augmentation (the CIFAR protocol's) are written only when set, so that pools
# saved before them keep their signature.
SCHEDULE_KEYS = ("lr_milestones", "lr_decay", "augment")
TEACHER_TRAIN_KEYS = ("epochs", "batch_size", "learning_rate", "optimizer", "weight_decay") + SCHEDULE_KEYS
OWN_KEYS = ("data_fraction", "label_noise", "class_permutation", "seed")
TRAINING_KEYS = TEACHER_TRAIN_KEYS + OWN_KEYS
TEACHER_EPOCHS = 40


@dataclasses.dataclass(frozen=True, init=False)
class TeacherTraining:
    """How one teacher is trained. train: its `TrainConfig` (default: 40 epochs, else TrainConfig's
    defaults; a teacher is trained on hard labels, so only the fields of TEACHER_TRAIN_KEYS apply),
    given by field name (`TeacherTraining(epochs=2)`) and read back the same way (`.epochs`). Its
    own fields: data_fraction (of the training split), label_noise (fraction of labels corrupted),
    class_permutation (train on labels y -> class_permutation[y]) and seed."""

    train: TrainConfig
    data_fraction: float = 1.0
    label_noise: float = 0.0
    class_permutation: tuple[int, ...] | None = None
    seed: int = 0

    def __init__(self, train: TrainConfig | None = None, data_fraction: float = 1.0, label_noise: float = 0.0,
                 class_permutation=None, seed: int = 0, **train_changes):
        unknown = sorted(set(train_changes) - set(TEACHER_TRAIN_KEYS))
        if unknown:
            raise ConfigError(f"unknown teacher training option(s) {', '.join(unknown)}; known: "
                              f"{', '.join(TRAINING_KEYS)}")
        train = (train or TrainConfig(epochs=TEACHER_EPOCHS)).replace(**train_changes)  # validated there
        check_value(class_permutation, tuple[int, ...] | None, "teacher training class_permutation")
        check_value(data_fraction, float, "teacher training data_fraction")
        check_value(label_noise, float, "teacher training label_noise")
        if class_permutation is not None:
            permutation = tuple(class_permutation)
            if sorted(permutation) != list(range(len(permutation))) or not all(
                    isinstance(c, int) and not isinstance(c, bool) for c in permutation):
                raise ConfigError(f"class_permutation must list every class 0..C-1 once, got {list(permutation)}")
            class_permutation = permutation
        if not 0.0 < data_fraction <= 1.0:
            raise ConfigError(f"data_fraction must be in (0, 1], got {data_fraction}")
        if not 0.0 <= label_noise < 1.0:
            raise ConfigError(f"label_noise must be in [0, 1), got {label_noise}")
        for name, value in (("train", train), ("data_fraction", data_fraction), ("label_noise", label_noise),
                            ("class_permutation", class_permutation), ("seed", seed)):
            object.__setattr__(self, name, value)
        check_fields(self, "teacher training")

    def __getattr__(self, name: str):
        if name in TEACHER_TRAIN_KEYS:  # called only for names that are not fields
            return getattr(self.train, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def train_config(self) -> TrainConfig:
        return self.train

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "TeacherTraining":
        try:
            return cls(**raw)
        except TypeError as error:
            raise ConfigError(f"teacher training: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        """Flat, as a pool file writes it (and as pools saved before kept it in pool.json)."""
        data = {**{key: getattr(self.train, key) for key in TEACHER_TRAIN_KEYS},
                **{key: getattr(self, key) for key in OWN_KEYS}}
        signature = self.train.signature()
        for key in SCHEDULE_KEYS:
            if key not in signature:
                del data[key]
        if data["class_permutation"] is None:  # absent, so pools saved before it stay reusable
            del data["class_permutation"]
        else:
            data["class_permutation"] = list(data["class_permutation"])
        return data


@dataclasses.dataclass(frozen=True)
class TeacherSpec:
    """One teacher: a model trained here (`model`) or external logits (`external`, a path)."""

    name: str
    model: ModelSpec | None = None
    external: str | None = None
    training: TeacherTraining = TeacherTraining()

    def __post_init__(self):
        check_fields(self, f"teacher {self.name!r}")
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"teacher name {self.name!r} must be letters, digits, '-' or '_'")
        if (self.model is None) == (self.external is None):
            raise ConfigError(f"teacher {self.name!r} needs exactly one of 'arch' or 'external'")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "TeacherSpec":
        """The inverse of `to_dict` (the form pool.json keeps)."""
        unknown = sorted(set(raw) - {"name", "model", "external", "training"})
        if unknown:
            raise ConfigError(f"teacher {raw.get('name', '?')!r}: unknown key(s) {', '.join(unknown)}")
        model = ModelSpec.from_dict(raw["model"]) if "model" in raw else None
        training = TeacherTraining.from_dict(raw.get("training", {}))
        return cls(raw.get("name", ""), model, raw.get("external"), training)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.model is not None:
            data["model"] = self.model.to_dict()
            data["training"] = self.training.to_dict()
        else:
            data["external"] = self.external
        return data


@dataclasses.dataclass(frozen=True)
class PoolSpec:
    name: str
    teachers: tuple[TeacherSpec, ...]

    def with_epochs(self, epochs: int) -> "PoolSpec":
        """Every teacher trained here for `epochs` epochs (external teachers as they are)."""
        def shortened(teacher: TeacherSpec) -> TeacherSpec:
            if teacher.model is None:
                return teacher
            t = teacher.training
            training = TeacherTraining(t.train.replace(epochs=epochs), t.data_fraction, t.label_noise,
                                       t.class_permutation, t.seed)
            return dataclasses.replace(teacher, training=training)

        return dataclasses.replace(self, teachers=tuple(shortened(t) for t in self.teachers))

    def __post_init__(self):
        check_fields(self, "pool spec")
        if not self.teachers:
            raise ConfigError(f"pool spec {self.name!r} lists no teachers")
        names = [t.name for t in self.teachers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"pool spec {self.name!r} names teacher(s) twice: {', '.join(duplicates)}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "PoolSpec":
        """The inverse of `to_dict` (a pool file has its own form: `pool_spec_from_dict`)."""
        unknown = sorted(set(raw) - {"name", "teachers"})
        if unknown:
            raise ConfigError(f"pool spec: unknown key(s) {', '.join(unknown)}")
        return cls(str(raw["name"]), tuple(TeacherSpec.from_dict(t) for t in raw.get("teachers", [])))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "teachers": [t.to_dict() for t in self.teachers]}


def default_preset(dataset: str) -> str:
    """The preset `default` means for a data set: its own if one is shipped, else `generic`
    (or `generic_image` for image data)."""
    return dataset if dataset in preset_names() else "generic"


def load_pool_spec(source: str | Path, dataset: str | None = None, base_dir: Path | None = None) -> PoolSpec:
    """Reads a pool spec from a `.toml`/`.yaml`/`.yml` file or a preset name (`default` picks
    the data set's preset). Relative external paths are resolved against the file's folder."""
    source = str(source)
    path = Path(source)
    if path.suffix.lower() in CONFIG_SUFFIXES:
        raw = read_config_file(path, "pool spec")
        return pool_spec_from_dict(raw, name=path.stem, base_dir=path.parent.absolute())
    name = default_preset(dataset) if source == "default" and dataset else source
    if name not in preset_names():
        raise UnknownNameError(f"unknown pool preset {source!r}; presets: {', '.join(preset_names())} "
                               f"(or give a .toml/.yaml file)")
    raw = read_config_file(PRESET_DIR / f"{name}.toml", "pool preset")
    return pool_spec_from_dict(raw, name=name, base_dir=base_dir)


def pool_spec_from_dict(raw: Mapping[str, Any], name: str, base_dir: Path | None = None) -> PoolSpec:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"pool spec {name!r} must be a table/mapping")
    unknown = sorted(set(raw) - {"description", "defaults", "teachers"})
    if unknown:
        raise ConfigError(f"pool spec {name!r} has unknown key(s): {', '.join(unknown)}")
    defaults = raw.get("defaults", {})
    check_value(defaults, Mapping, f"pool spec {name!r} [defaults]")
    check_value(raw.get("teachers", []), list[Mapping], f"pool spec {name!r} teachers")
    bad_defaults = sorted(set(defaults) - set(TRAINING_KEYS))
    if bad_defaults:
        raise ConfigError(f"pool spec {name!r}: unknown default(s) {', '.join(bad_defaults)}")
    teachers = []
    for entry in raw.get("teachers", []):
        entry = dict(entry)
        allowed = {"name", "arch", "options", "external", *TRAINING_KEYS}
        extra = sorted(set(entry) - allowed)
        if extra:
            raise ConfigError(f"teacher {entry.get('name', '?')!r}: unknown key(s) {', '.join(extra)}")
        teacher_name = entry.get("name", "")
        check_value(teacher_name, str, f"pool spec {name!r}: teacher name")
        if "external" in entry:
            check_value(entry["external"], str, f"pool spec {name!r}, teacher {teacher_name!r} external")
            external = Path(entry["external"])
            if not external.is_absolute() and base_dir is not None:
                external = base_dir / external
            teachers.append(TeacherSpec(teacher_name, external=str(external)))
            continue
        if "arch" not in entry:
            raise ConfigError(f"teacher {teacher_name!r} needs 'arch' (a model name) or 'external'")
        training = {**defaults, **{k: entry[k] for k in TRAINING_KEYS if k in entry}}
        try:
            model, training = ModelSpec(entry["arch"], entry.get("options", {})), TeacherTraining(**training)
        except ConfigError as error:
            raise ConfigError(f"pool spec {name!r}, teacher {teacher_name!r}: {error}") from None
        teachers.append(TeacherSpec(teacher_name, model=model, training=training))
    return PoolSpec(name, tuple(teachers))
