"""What the API's runs return: the rows of a finished run, read back from its results.json."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from mtkd.distill.results import REFERENCE, format_table
from mtkd.errors import MtkdError


@dataclasses.dataclass(frozen=True)
class RunResult:
    """A run's folder and its results.json: `rows` (one per strategy, each with its seeds,
    validation and test accuracies, `statistics` and `paired` difference from `reference`),
    `teachers` (each with its accuracies and leak check) and the rest of the file in `document`.
    `reused`: the run had already finished in `out` (a `resume` of a finished run)."""

    out: Path
    rows: tuple[dict, ...]
    teachers: tuple[dict, ...]
    document: dict[str, Any]
    reused: bool = False

    @classmethod
    def read(cls, out: str | Path, reused: bool = False) -> "RunResult":
        path = Path(out) / "results.json"
        if not path.is_file():
            raise MtkdError(f"{out} holds no results.json: the run has not finished")
        document = json.loads(path.read_text())
        return cls(Path(out), tuple(document.get("rows", [])), tuple(document.get("teachers") or []), document,
                   reused)

    def row(self, strategy: str) -> dict:
        for row in self.rows:
            if row["strategy"] == strategy:
                return row
        raise KeyError(f"no row {strategy!r}; rows: {', '.join(r['strategy'] for r in self.rows)}")

    def test_accuracy(self, strategy: str) -> float:
        """The row's mean test accuracy over its seeds (a fraction)."""
        return float(np.mean(self.row(strategy)["test_accuracy"]))

    def dataset_name(self) -> str:
        """The data set the run read (for arrays given to the API, the name they were imported as)."""
        return self.document.get("dataset", "")

    def table(self) -> str:
        """The table the command prints: mean ± sample std in %, paired differences, teachers."""
        return format_table(list(self.rows), list(self.teachers), self.document.get("reference") or REFERENCE)


__all__ = ["RunResult"]
