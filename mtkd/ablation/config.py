"""The ablation config: one data set, one pool (or several), one student, a list of strategies, S seeds.

TOML example (see experiments/*.toml):

    dataset = "mnist1d"
    pool = "default"                  # preset or spec file, trained (or reused) in pool_dir;
                                      # leave it out and give pool_dir to use a pool as it is
    # pools = ["default", "pools/mnist1d_misleading.toml"]   # instead of pool: the same
                                      # ablation on each, results in OUT/<pool name>/
    seeds = 3
    devices = 2                       # optional: split the seeds over at most 2 local devices (default: all)
    strategies = ["none", "uniform", "single:*", "best_single", "rl", "dml"]

    [student]
    arch = "mlp"
    options = { widths = [100, 100] }

    [train]                           # any TrainConfig field
    epochs = 150

    # teacher_epochs = 1              # train the pool's teachers this long (a try; own folder)

    [[pairs]]                         # optional: the ablation once per pair (instead of pools),
    name = "resnet32x4-resnet8x4"     # results in OUT/<name>/ (see experiments/cifar100_kd.toml)
    student = { arch = "resnet8x4" }
    strategies = ["none", "single:resnet32x4"]   # default: the config's
    train = { learning_rate = 0.05 }  # changes to [train] for this pair

    [dml]                             # options of the dml / dml+teachers runners
    peers = 2

    [checkpoint]                      # when to checkpoint (resume with --resume); no effect on results
    every_seconds = 60                # default; every_epochs = N saves every N epochs as well

    [rl]                              # options of the rl runner
    policy = "path/to/policy"         # or omitted: a policy is trained first (see `mtkd select train`)

    [[losses]]                        # optional: a composite loss for the fusion strategies
    loss = "ce"                       # (see mtkd.distill.loss_config); default alpha*CE + (1-alpha)*T^2*KL
    [[losses]]
    loss = "dkd"

    [[families]]                      # optional: a row of its own per loss, after the strategies
    name = "dkd"                      # the row's name
    strategy = "uniform"              # its fusion strategy (default uniform)
    [[families.losses]]               # its composite loss, as [[losses]]
    loss = "ce"
    [[families.losses]]
    loss = "dkd"
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from mtkd.config_files import CONFIG_SUFFIXES, read_config_file
from mtkd.distill.config import TrainConfig
from mtkd.distill.loss_config import LossConfig
from mtkd.errors import ConfigError, MtkdError
from mtkd.models import ModelSpec
from mtkd.run_checkpoints import CheckpointConfig
from mtkd.typed_fields import check_fields, check_value

TOP_LEVEL_KEYS = {"pairs", "teacher_epochs", "student_data_fraction", "dataset", "data_dir", "pool", "pools", "pool_dir", "seeds", "strategies", "student", "train",
                  "val_fraction", "split_seed", "description", "dml", "rl", "byot", "losses", "name",
                  "checkpoint", "devices", "families", "val_indices", "val_split"}
FAMILY_KEYS = {"name", "strategy", "losses", "description"}
PAIR_KEYS = {"name", "student", "strategies", "train", "description"}


@dataclasses.dataclass(frozen=True)
class Pair:
    """A `[[pairs]]` entry: the ablation again with its own student, strategies (default: the
    config's) and [train] changes, its results in OUT/<name>/ (e.g. the teacher-student pairs of
    single-teacher KD, experiments/cifar100_kd.toml)."""

    name: str
    student: ModelSpec
    strategies: tuple[str, ...] = ()
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], index: int = 0) -> "Pair":
        _check_entry(raw, index, "pairs", ("name", "student"), PAIR_KEYS)
        check_value(raw["name"], str, f"[[pairs]] entry {index + 1} name")
        student = raw["student"]
        if not isinstance(student, Mapping) or sorted(set(student) - {"arch", "options"}) or "arch" not in student:
            raise ConfigError(f"pair {raw['name']!r}: student is {{arch, options}}, got {student!r}")
        strategies = raw.get("strategies", [])
        check_value(strategies, list[str], f"pair {raw['name']!r} strategies")
        train = raw.get("train", {})
        check_value(train, Mapping, f"pair {raw['name']!r} train")
        bad = sorted(set(train) - {f.name for f in dataclasses.fields(TrainConfig)})
        if bad:
            raise ConfigError(f"pair {raw['name']!r}: [train] has unknown key(s): {', '.join(bad)}")
        return cls(raw["name"], ModelSpec(student["arch"], student.get("options", {})), tuple(strategies), dict(train))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "student": self.student.to_dict(), "strategies": list(self.strategies),
                "train": dict(self.train)}


def _check_entry(raw, index: int, table: str, required: tuple[str, ...], allowed: set[str]) -> None:
    """One entry of a [[table]]: a table with the `required` keys and no key outside `allowed`."""
    if not isinstance(raw, Mapping) or sorted(set(raw) - allowed) or any(key not in raw for key in required):
        keys = ", ".join(sorted(raw)) if isinstance(raw, Mapping) else repr(raw)
        optional = ", ".join(f"`{key}`" for key in sorted(allowed - set(required)))
        raise ConfigError(f"[[{table}]] entry {index + 1} needs {' and '.join(f'`{key}`' for key in required)} "
                          f"(and may set {optional}); got {keys}")


@dataclasses.dataclass(frozen=True)
class LossFamily:
    """A `[[families]]` row: the student distilled under `strategy` (a fusion strategy) with its
    own composite `loss`, reported under `name`."""

    name: str
    loss: LossConfig
    strategy: str = "uniform"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], index: int = 0) -> "LossFamily":
        _check_entry(raw, index, "families", ("name", "losses"), FAMILY_KEYS)
        try:
            loss = LossConfig.from_dicts(raw["losses"])
        except MtkdError as error:
            raise type(error)(f"family {raw['name']!r}: {error}") from None
        family = cls(raw["name"], loss, raw.get("strategy", "uniform"))
        check_fields(family, f"[[families]] entry {index + 1}", skip=("loss",))
        return family

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "strategy": self.strategy, "losses": self.loss.to_dicts()}


@dataclasses.dataclass(frozen=True)
class AblationConfig:
    dataset: str = "mnist1d"
    pool: str | None = None
    pool_dir: str | None = None
    data_dir: str | None = None
    seeds: int = 3
    strategies: tuple[str, ...] = ("none", "uniform")
    student: ModelSpec = ModelSpec("mlp", {"widths": [100, 100]})
    train: TrainConfig = TrainConfig()
    val_fraction: float = 0.1
    split_seed: int = 0
    student_data_fraction: float = 1.0  # the student sees this fraction of the training split
    losses: LossConfig | None = None  # a composite loss for the fusion strategies' students
    sections: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    pools: tuple[str, ...] = ()  # several pools, each ablated alike (instead of pool / pool_dir)
    # When to checkpoint: it changes no result, so it is not part of the run's signature (`to_dict`).
    checkpoint: CheckpointConfig = CheckpointConfig()
    devices: int | None = None  # split the seeds over at most this many local devices (None: all)
    families: tuple[LossFamily, ...] = ()  # rows of their own, each with its composite loss
    val_indices: str | None = None  # a file of the train split's rows held out for validation (not the carve)
    val_split: str | None = None  # the data set's own validation split (then all of train is trained on)
    pairs: tuple[Pair, ...] = ()  # the ablation once per pair, each with its own student (instead of pools)
    teacher_epochs: int | None = None  # train the pool's teachers for this many epochs (a recipe tried out)

    def __post_init__(self):
        check_fields(self, "ablation config")
        if self.pairs:
            if self.pools:
                raise ConfigError("give either pairs or pools, not both")
            labels = [pair.name for pair in self.pairs]
            if len(set(labels)) != len(labels):
                raise ConfigError(f"pairs named twice: {', '.join(sorted({n for n in labels if labels.count(n) > 1}))}")
            for pair in self.pairs:  # each pair's training, validated now rather than when its turn comes
                self.pair_config(pair)
        if self.teacher_epochs is not None and (isinstance(self.teacher_epochs, bool) or self.teacher_epochs < 1):
            raise ConfigError(f"teacher_epochs must be at least 1, got {self.teacher_epochs!r}")
        if self.pools:
            if self.pool is not None or self.pool_dir is not None:
                raise ConfigError("give either pools or pool / pool_dir, not both")
            labels = [pool_label(p) for p in self.pools]
            if len(set(labels)) != len(labels):
                raise ConfigError(f"pools listed twice (by name): {', '.join(self.pools)}")
        if self.seeds < 1:
            raise ConfigError(f"seeds must be at least 1, got {self.seeds}")
        if self.devices is not None and (isinstance(self.devices, bool) or not isinstance(self.devices, int)
                                         or self.devices < 1):
            raise ConfigError(f"devices must be a whole number >= 1, got {self.devices!r}")
        if not 0.0 < self.student_data_fraction <= 1.0:
            raise ConfigError(f"student_data_fraction must be in (0, 1], got {self.student_data_fraction}")
        if not self.strategies and not self.families:
            raise ConfigError("the ablation config lists no strategies (and no [[families]])")
        rows = list(self.strategies) + [family.name for family in self.families]
        duplicates = sorted({s for s in rows if rows.count(s) > 1})
        if duplicates:
            raise ConfigError(f"strategies or families listed twice: {', '.join(duplicates)}")

    def only(self, names) -> "AblationConfig":
        """This config with only the strategies and families named (in the config's order; with
        pairs, in each pair's list, dropping pairs left with none)."""
        names = list(names)
        if self.pairs:
            listed = [s for pair in self.pairs for s in (pair.strategies or self.strategies)]
            missing = [n for n in names if n not in listed]
            if missing:
                raise ConfigError(f"no pair lists strategy {', '.join(missing)}; they list "
                                  f"{', '.join(dict.fromkeys(listed))}")
            pairs = tuple(dataclasses.replace(pair, strategies=tuple(s for s in (pair.strategies or self.strategies)
                                                                      if s in names)) for pair in self.pairs)
            return dataclasses.replace(self, pairs=tuple(pair for pair in pairs if pair.strategies))
        missing = [n for n in names if n not in self.strategies and self.family(n) is None]
        if missing:
            listed = list(self.strategies) + [family.name for family in self.families]
            raise ConfigError(f"the config lists no strategy or family {', '.join(missing)}; it lists "
                              f"{', '.join(listed)}")
        return dataclasses.replace(self, strategies=tuple(s for s in self.strategies if s in names),
                                   families=tuple(f for f in self.families if f.name in names))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], base_dir: Path | None = None) -> "AblationConfig":
        """The inverse of `to_dict` (a config file keeps [dml], [rl], [byot] at the top level:
        `ablation_config_from_dict`)."""
        raw = dict(raw)
        sections = raw.pop("sections", {})
        flat = {key: value for key, value in raw.items() if value is not None or key == "pool"}
        return ablation_config_from_dict({**flat, **sections}, base_dir)

    def family(self, name: str) -> LossFamily | None:
        return next((family for family in self.families if family.name == name), None)

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.sections.get(name, {}))

    def for_each_pool(self) -> list[tuple[str, "AblationConfig"]]:
        """(name, the one-pool config) per entry of `pools`, or (name, the pair's config) per entry
        of `pairs`."""
        if self.pairs:
            return [(pair.name, self.pair_config(pair)) for pair in self.pairs]
        return [(pool_label(p), dataclasses.replace(self, pool=p, pools=())) for p in self.pools]

    def pair_config(self, pair: Pair) -> "AblationConfig":
        try:
            train = self.train.replace(**pair.train)
        except ConfigError as error:
            raise ConfigError(f"pair {pair.name!r} [train]: {error}") from None
        return dataclasses.replace(self, pairs=(), student=pair.student, strategies=pair.strategies or self.strategies,
                                   train=train)

    @property
    def runs_label(self) -> str:
        """What each sub-run of a several-run config is: a pair or a pool."""
        return "pair" if self.pairs else "pool"

    def to_dict(self) -> dict[str, Any]:
        pools = {"pools": list(self.pools)} if self.pools else {}  # absent for one pool: old runs keep their signature
        return {"dataset": self.dataset, "pool": self.pool, **pools, "pool_dir": self.pool_dir, "seeds": self.seeds,
                "strategies": list(self.strategies), "student": self.student.to_dict(),
                "train": self.train.signature(), "val_fraction": self.val_fraction,
                "split_seed": self.split_seed, "student_data_fraction": self.student_data_fraction,
                "losses": self.losses.to_dicts() if self.losses is not None else None,
                "sections": {k: dict(v) for k, v in self.sections.items()},
                # Absent unless set, so that earlier runs keep their signature.
                **({"devices": self.devices} if self.devices is not None else {}),
                **({"families": [family.to_dict() for family in self.families]} if self.families else {}),
                **({"val_indices": self.val_indices} if self.val_indices is not None else {}),
                **({"val_split": self.val_split} if self.val_split is not None else {}),
                **({"pairs": [pair.to_dict() for pair in self.pairs]} if self.pairs else {}),
                **({"teacher_epochs": self.teacher_epochs} if self.teacher_epochs is not None else {})}


def pool_label(pool: str) -> str:
    """A pool's name in output paths: a preset's name, or a spec file's stem."""
    return Path(pool).stem if Path(pool).suffix in CONFIG_SUFFIXES else pool


def _resolve_pool(pool, base_dir: Path | None):
    if pool is not None and base_dir is not None and Path(pool).suffix in CONFIG_SUFFIXES and not Path(pool).is_absolute():
        return str(base_dir / pool)
    return pool


def ablation_config_from_dict(raw: Mapping[str, Any], base_dir: Path | None = None) -> AblationConfig:
    unknown = sorted(set(raw) - TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(f"ablation config has unknown key(s): {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(TOP_LEVEL_KEYS))}")
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    train = dict(_table_of(raw, "train"))
    bad_train = sorted(set(train) - train_fields)
    if bad_train:
        raise ConfigError(f"ablation config [train] has unknown key(s): {', '.join(bad_train)}")
    student = dict(_table_of(raw, "student", {"arch": "mlp", "options": {"widths": [100, 100]}}))
    bad_student = sorted(set(student) - {"arch", "options"})
    if bad_student:
        raise ConfigError(f"ablation config [student] has unknown key(s): {', '.join(bad_student)}")
    pools = raw.get("pools", [])
    if isinstance(pools, str) or not isinstance(pools, (list, tuple)) or not all(isinstance(p, str) for p in pools):
        raise ConfigError(f"pools must be a list of pool presets or spec files, got {pools!r}")
    if "pools" in raw and not pools:
        raise ConfigError("pools is empty; list at least one pool, or use pool")
    pool = raw.get("pool")
    check_value(pool, str | None, "ablation config pool")
    check_value(raw.get("pool_dir"), str | None, "ablation config pool_dir")
    if pool is None and raw.get("pool_dir") is None and not pools:
        pool = "default"
    pool = _resolve_pool(pool, base_dir)
    return AblationConfig(
        pools=tuple(_resolve_pool(p, base_dir) for p in pools),
        dataset=raw.get("dataset", "mnist1d"), pool=pool, pool_dir=raw.get("pool_dir"),
        data_dir=raw.get("data_dir"), seeds=raw.get("seeds", 3),
        strategies=_strings(raw, "strategies", () if "families" in raw else ("none", "uniform")),
        families=tuple(LossFamily.from_dict(family, i) for i, family in enumerate(_list_of(raw, "families"))),
        student=ModelSpec(student.get("arch", "mlp"), student.get("options", {})),
        train=_train_config(train), val_fraction=raw.get("val_fraction", 0.1),
        split_seed=raw.get("split_seed", 0),
        student_data_fraction=raw.get("student_data_fraction", 1.0),
        losses=LossConfig.from_dicts(raw["losses"]) if "losses" in raw else None,
        sections={k: dict(_table_of(raw, k)) for k in ("dml", "rl", "byot") if k in raw},
        checkpoint=CheckpointConfig.from_dict(_table_of(raw, "checkpoint")), devices=raw.get("devices"),
        val_indices=_resolve_file(raw.get("val_indices"), base_dir, "val_indices"), val_split=raw.get("val_split"),
        pairs=tuple(Pair.from_dict(pair, i) for i, pair in enumerate(_list_of(raw, "pairs"))),
        teacher_epochs=raw.get("teacher_epochs"))


def _resolve_file(path, base_dir: Path | None, name: str) -> str | None:
    """A file named in the config, relative to the config's folder."""
    check_value(path, str | None, f"ablation config {name}")
    if path is None or base_dir is None or Path(path).is_absolute():
        return path
    return str(base_dir / path)


def _train_config(train: Mapping[str, Any]) -> TrainConfig:
    try:
        return TrainConfig(**train)
    except ConfigError as error:
        raise ConfigError(f"ablation config [train]: {error}") from None


def _strings(raw: Mapping[str, Any], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = raw.get(name, default)
    check_value(value, list[str] | tuple[str, ...], f"ablation config {name}")
    return tuple(value)


def _list_of(raw: Mapping[str, Any], name: str) -> list:
    value = raw.get(name, [])
    if not isinstance(value, list):
        raise ConfigError(f"{name} must be a list of tables ([[{name}]]), got {value!r}")
    return value


def _table_of(raw: Mapping[str, Any], name: str, default: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    value = raw.get(name, {} if default is None else default)
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{name}] must be a table, got {value!r}")
    return value


def load_ablation_config(path: str | Path) -> AblationConfig:
    raw = read_config_file(path, "ablation config")
    return ablation_config_from_dict(raw, base_dir=Path(path).parent.absolute())
