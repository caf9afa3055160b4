"""Finding a data set by name and opening its TFDS builder without touching the network.

Three kinds of names are accepted, all read through the same TFDS path (array_record files read
with `builder.as_data_source`, no TensorFlow needed):

* the embedded data sets (`EMBEDDED_DATASETS`), generated locally on first use;
* any TFDS catalog name (`mnist`, `cifar10`, `mnist_corrupted/shot_noise:1.0.0`, ...), which must
  have been prepared beforehand with network and TensorFlow (`mtkd data prepare NAME`);
* any data set already prepared under the data directory (`DATA_DIR/NAME/[CONFIG/]VERSION/`),
  even one that is not in the catalog.
"""

from __future__ import annotations

import importlib.util
import os
import re

import tensorflow_datasets as tfds

from mtkd.data.builders import EMBEDDED_BUILDERS, EMBEDDED_DATASETS
from mtkd.errors import DatasetError, UnknownNameError

# `name`, `name/config`, `name:1.2.3` or `name/config:1.2.3`. Community names with a namespace
# (`huggingface:mnist`) are refused: resolving them queries a remote index.
_NAME_PATTERN = re.compile(
    r"^(?P<base>[a-z0-9_]+)"
    r"(/(?P<config>[A-Za-z0-9_.\-]+))?"
    r"(:(?P<version>[0-9*]+\.[0-9*]+\.[0-9*]+))?$"
)
ARRAY_RECORD = "array_record"


def _disable_tfds_network() -> None:
    """Make TFDS never look at its public GCS bucket (`gs://tfds-data`).

    Older TFDS versions query the bucket for dataset info and prepared files when a builder is
    created or prepared; without network those calls hang in retries. Recent versions already
    default to disabled; setting it again is harmless.
    """
    from tensorflow_datasets.core.utils import gcs_utils

    gcs_utils._is_gcs_disabled = True  # pylint: disable=protected-access


_disable_tfds_network()


def how_to_prepare(name: str, data_dir: str) -> str:
    """The instructions the error messages give for preparing a data set: a catalog one is
    downloaded once; anything else is the user's own, imported from arrays."""
    if _NAME_PATTERN.match(name) is None or base_name(name) not in catalog_names():
        return (f"a data set of your own is imported once from NumPy arrays: "
                f"`mtkd data import {name} --npz FILE --data-dir {data_dir}` (see `mtkd data import --help`)")
    return (
        f"prepare it once, on a machine with network: pip install 'mtkd[tensorflow]' and then "
        f"`mtkd data prepare {name} --data-dir {data_dir}` (TFDS download_and_prepare with "
        f"file_format='{ARRAY_RECORD}')"
    )


def catalog_names() -> frozenset[str]:
    """Names of the data sets in TFDS's catalog (community data sets excluded: network).

    Not cached: builders registered later (by importing a user's module) must be found too.
    """
    return frozenset(tfds.list_builders(with_community_datasets=False))


def base_name(name: str) -> str:
    """`cifar10` for `cifar10/config:1.0.0`; raises UnknownNameError on a malformed name."""
    match = _NAME_PATTERN.match(name) if isinstance(name, str) else None
    if match is None:
        raise UnknownNameError(
            f"invalid data set name {name!r}: expected NAME, NAME/CONFIG or NAME[/CONFIG]:X.Y.Z "
            f"(lower case TFDS name); embedded data sets: {', '.join(EMBEDDED_DATASETS)}"
        )
    return match.group("base")


def check_known(name: str, data_dir: str) -> None:
    """Raise UnknownNameError unless `name` is embedded, in the TFDS catalog or under data_dir."""
    base = base_name(name)
    if name in EMBEDDED_BUILDERS:
        return
    if base in EMBEDDED_BUILDERS:
        raise UnknownNameError(
            f"embedded data set {base!r} has no configs or versions to choose; use {base!r}"
        )
    if base in catalog_names() or os.path.isdir(os.path.join(data_dir, base)):
        return
    raise UnknownNameError(
        f"unknown data set {name!r}: not embedded ({', '.join(EMBEDDED_DATASETS)}), not in the "
        f"TFDS catalog, and not prepared under {data_dir} (your own arrays: `mtkd data import {name} --npz FILE`)"
    )


def _embedded_builder(name: str, data_dir: str) -> tfds.core.DatasetBuilder:
    builder_class = EMBEDDED_BUILDERS.get(name)
    return builder_class(data_dir=data_dir, file_format=ARRAY_RECORD)


def _file_formats(builder: tfds.core.DatasetBuilder) -> list[str]:
    """The file formats the prepared files exist in, e.g. ['array_record']."""
    info = builder.info
    if hasattr(info, "available_file_formats"):
        formats = info.available_file_formats()
    else:  # TFDS versions without alternative formats
        formats = [info.file_format] if info.file_format else []
    return [getattr(fmt, "value", str(fmt)) for fmt in formats]


def _check_array_record(name: str, builder: tfds.core.DatasetBuilder) -> None:
    formats = _file_formats(builder)
    if ARRAY_RECORD not in formats:
        shown = ", ".join(formats) or "an unknown format"
        raise DatasetError(
            f"data set {name!r} at {builder.data_dir} is prepared as {shown}, but mtkd reads "
            f"only the {ARRAY_RECORD} format (random access without TensorFlow); prepare it "
            f"again into another directory: pip install 'mtkd[tensorflow]' then "
            f"`mtkd data prepare {name} --data-dir OTHER_DIR`"
        )


def _prepare_embedded(name: str, data_dir: str) -> tfds.core.DatasetBuilder:
    builder = _embedded_builder(name, data_dir)
    if builder.is_prepared():
        return builder
    try:
        # Embedded sets take a second to write: TFDS's per-split progress bars would only clutter
        # the output of the command that triggered them.
        tfds.display_progress_bar(False)
        try:
            builder.download_and_prepare(file_format=ARRAY_RECORD)
        finally:
            tfds.display_progress_bar(True)
    except Exception:
        # Another process may have prepared it at the same time; its files are then valid.
        builder = _embedded_builder(name, data_dir)
        if not builder.is_prepared():
            raise
    return _embedded_builder(name, data_dir)


def _open_tfds_builder(name: str, data_dir: str) -> tfds.core.DatasetBuilder:
    """The catalog builder, or a read-only one from the files when `name` is not in the catalog."""
    try:
        return tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # TFDS raises several kinds; its own message can be very long
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise DatasetError(
            f"cannot open data set {name!r} under {data_dir}: {first_line}; "
            f"{how_to_prepare(name, data_dir)}"
        ) from error


def _prepared_on_disk(name: str, data_dir: str) -> tfds.core.DatasetBuilder | None:
    """For a name without a version whose catalog version is not prepared: the highest version
    prepared under `DATA_DIR/NAME/` from files (a catalog name re-used by `mtkd data import`, such
    as a small synthetic `cifar100`), or None."""
    match = _NAME_PATTERN.match(name)
    if match.group("version") is not None or match.group("config") is not None:
        return None
    folder = os.path.join(data_dir, match.group("base"))
    versions = sorted((tuple(int(part) for part in entry.split(".")), entry) for entry in os.listdir(folder)
                      if re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", entry)
                      and os.path.isfile(os.path.join(folder, entry, "dataset_info.json")))
    if not versions:
        return None
    return tfds.builder_from_directory(os.path.join(folder, versions[-1][1]))


def open_prepared_builder(name: str, data_dir: str, prepare: bool) -> tfds.core.DatasetBuilder:
    """A TFDS builder whose array_record files exist under `data_dir`; never downloads.

    Embedded data sets are generated when `prepare` is true. Anything else that is not prepared
    raises DatasetError saying how to prepare it.
    """
    check_known(name, data_dir)
    if name in EMBEDDED_BUILDERS:
        if prepare:
            builder = _prepare_embedded(name, data_dir)
        else:
            builder = _embedded_builder(name, data_dir)
            if not builder.is_prepared():
                raise DatasetError(
                    f"embedded data set {name!r} is not prepared under {data_dir}; run "
                    f"`mtkd data prepare {name} --data-dir {data_dir}` (no network needed)"
                )
    else:
        # Without its directory it cannot be prepared; checking first also spares TFDS warnings.
        has_directory = os.path.isdir(os.path.join(data_dir, base_name(name)))
        builder = _open_tfds_builder(name, data_dir) if has_directory else None
        if has_directory and (builder is None or not builder.is_prepared()):
            builder = _prepared_on_disk(name, data_dir) or builder
        if builder is None or not builder.is_prepared():
            raise DatasetError(
                f"data set {name!r} is not prepared under {data_dir} and mtkd never downloads "
                f"while loading; {how_to_prepare(name, data_dir)}"
            )
    _check_array_record(name, builder)
    return builder


def prepare_builder(name: str, data_dir: str) -> tfds.core.DatasetBuilder:
    """Prepare `name` as array_record under `data_dir` (idempotent) and return its builder.

    Catalog data sets need TensorFlow (TFDS uses it to download and encode) and network.
    """
    check_known(name, data_dir)
    if name in EMBEDDED_BUILDERS:
        return open_prepared_builder(name, data_dir, prepare=True)
    builder = _open_tfds_builder(name, data_dir)
    if builder.is_prepared():
        _check_array_record(name, builder)
        return builder
    if importlib.util.find_spec("tensorflow") is None:
        raise DatasetError(
            f"preparing {name!r} needs TensorFlow, which is not installed; "
            f"{how_to_prepare(name, data_dir)}"
        )
    try:
        builder = tfds.builder(name, data_dir=data_dir, file_format=ARRAY_RECORD)
        builder.download_and_prepare(file_format=ARRAY_RECORD)
    except Exception as error:  # download, checksum or encoding failures, reported as one line
        raise DatasetError(
            f"could not prepare {name!r} under {data_dir} (network needed): {error}"
        ) from error
    return open_prepared_builder(name, data_dir, prepare=False)
