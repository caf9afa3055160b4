"""Output directories: refuse to mix two different runs in one directory; write results files
whole (to a temporary name, then renamed), so a kill never leaves half a file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mtkd.distributed import barrier, is_writer
from mtkd.errors import ConfigError, OutputError, OutputExistsError
from mtkd.progress import stderr_line

RUN_FILE = "run.json"
PROVENANCE = "provenance"  # run.json's key for where and when the run was made (not its signature)
CHECKPOINTS = "checkpoints"  # OUT/checkpoints/: every command's checkpoints (`mtkd.run_checkpoints`)


def claim_output_dir(out: str | Path, signature: dict[str, Any], overwrite: bool = False,
                     resume: bool = False, announce: bool = True) -> Path:
    """Makes `out` ready for the run described by `signature` (a JSON-able dict).

    An empty or missing directory is claimed. One that holds a run (started or finished):
    - of the same signature: continued with `resume`, emptied with `overwrite`, else refused;
    - of another signature: emptied with `overwrite`; refused otherwise, naming the differing
      keys when `resume` was asked for.
    Call this before any training, so a refusal loses nothing. In a multi-process run process 0
    claims the folder and the others wait until it has.
    """
    out = Path(out)
    if not is_writer():
        barrier(f"mtkd: claimed {out}")
        return out
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output {out} exists and is not a directory")
    signature = _normalise(signature)
    if resume and announce and not _has_progress(out):  # `announce`: the user asked for --resume
        stderr_line(f"--resume: {out} holds nothing to resume (no checkpoint, no results); "
                    f"starting the run from its beginning")
    if out.is_dir() and any(out.iterdir()):
        previous = _read_signature(out)
        if overwrite:
            shutil.rmtree(out)
        elif previous == signature:
            if not resume:
                raise OutputExistsError(f"output directory {out} already holds this run (started or finished); "
                                        f"pass --resume to continue it or --overwrite to start it again")
            return out  # run.json unchanged: a resumed run keeps its first start (and a finished one every byte)
        elif previous is None:
            raise OutputExistsError(f"output directory {out} holds files of another program; choose another --out "
                                    f"or pass --overwrite")
        elif resume:
            raise OutputExistsError(f"cannot --resume in {out}: its run has another config (differing key(s): "
                                    f"{', '.join(differing_keys(previous, signature))}); pass --overwrite to start over")
        else:
            raise OutputExistsError(f"output directory {out} already holds a different run; choose another --out, "
                                    f"or pass --overwrite (or --resume with the same config)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_run_file(out, signature)
    except OSError as error:  # a read-only file system, a missing permission, a file in the path
        raise OutputError(f"cannot write the output directory {out}: {error.strerror or error}") from None
    barrier(f"mtkd: claimed {out}")
    return out


def _has_progress(out: Path) -> bool:
    """Whether `out` holds anything a resume continues from: a checkpoint, a results file, a
    saved teacher (anything but the run's signature, empty files and per-epoch metrics, which a
    run rewrites from its checkpoint)."""
    if not out.is_dir():
        return False
    for path in out.rglob("*"):
        if path.is_file() and path.name != RUN_FILE and path.stat().st_size > 0 and path.parent.name != "metrics":
            return True
    return False


def differing_keys(first: Any, second: Any, prefix: str = "") -> list[str]:
    """Dotted paths at which two JSON values differ (a whole list counts as one value)."""
    if isinstance(first, dict) and isinstance(second, dict):
        keys = []
        for key in sorted(set(first) | set(second)):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in first or key not in second:
                keys.append(path)
            else:
                keys.extend(differing_keys(first[key], second[key], path))
        return keys
    return [] if first == second else [prefix or "(the whole config)"]


def finished_before(out: Path, results: str = "results.json", log=None) -> bool:
    """True when a resumed run had already finished: its results are written and no checkpoint
    is left (they are removed only after the results). Nothing then needs computing again."""
    out = Path(out)
    done = (out / results).is_file() and not (out / CHECKPOINTS).exists()
    if done:
        (log or (lambda line: None))(f"the run in {out} had finished; its {results} is unchanged")
    return done


def refuse_duplicates(names, where: str = "strategies") -> None:
    """ConfigError naming a strategy listed twice (its second run would overwrite the first's files)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"{where}: {name!r} is listed twice; each strategy runs once per command")
        seen.add(name)


def failed_rows(rows: list[dict]) -> list[str]:
    """The strategies whose rows hold an error (results.json marks them with `error`)."""
    return [row["strategy"] for row in rows if "error" in row]


def metrics_stem(strategy: str) -> str:
    """The name of a row's metrics file, `metrics/STEM.jsonl` (a strategy's `:` and `/` as `_`)."""
    return strategy.replace(":", "_").replace("/", "_")


def replace_text(path: str | Path, text: str) -> None:
    """Writes `path` atomically: a reader (or a resumed run) sees the old file or the new one. In a
    multi-process run only process 0 writes (`mtkd.distributed.is_writer`)."""
    if not is_writer():
        return
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.replace(path)


def save_figure(figure, path: str | Path, **options) -> None:
    """`figure.savefig` to a temporary name, then renamed (the format from `path`'s suffix); by
    process 0 only in a multi-process run."""
    if not is_writer():
        return
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    figure.savefig(temporary, format=path.suffix.lstrip("."), **options)
    temporary.replace(path)


def _normalise(signature: dict[str, Any]) -> Any:
    return json.loads(json.dumps(signature, sort_keys=True, default=str))


def _read_run_file(out: Path) -> Any:
    try:
        return json.loads((out / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None


def _read_signature(out: Path) -> Any:
    """The run's signature: run.json but its provenance (which no two starts share)."""
    recorded = _read_run_file(out)
    if isinstance(recorded, dict):
        recorded.pop(PROVENANCE, None)
    return recorded


def run_started(out: str | Path) -> str | None:
    """When the run in `out` was first started (run.json's provenance), if it says."""
    recorded = _read_run_file(Path(out))
    return recorded.get(PROVENANCE, {}).get("started") if isinstance(recorded, dict) else None


def _write_run_file(out: Path, signature: Any) -> None:
    """run.json: the signature and, under `provenance`, the code, libraries and machine and when
    the run started."""
    from mtkd.provenance import now, provenance

    record = provenance(started=now())
    replace_text(out / RUN_FILE, json.dumps({**signature, PROVENANCE: record}, indent=2, sort_keys=True) + "\n")
