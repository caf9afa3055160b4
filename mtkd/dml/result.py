"""The outcome of a mutual-learning run (or of its independent-peers baseline)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from mtkd.distill.results import result_row


@dataclasses.dataclass
class DMLResult:
    """Per peer k and seed index s: `best_epoch[k][s]` (1-based, chosen on that peer's validation
    accuracy), `val_accuracy[k][s]` at that epoch and `test_accuracy[k][s]` of its parameters.

    `params[k]` is peer k's chosen parameters stacked over seeds (model `graphdefs[k]`);
    `history` has one record per epoch with per-seed, per-peer lists [S][K]; `options` goes into
    the strategy's row (e.g. the update scheme and temperature).
    """

    strategy: str
    peer_names: list[str]
    seeds: list[int]
    best_epoch: list[list[int]]
    val_accuracy: list[list[float]]
    test_accuracy: list[list[float]]
    seconds: float
    graphdefs: list[Any]
    params: list[Any]
    history: list[dict]
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def mean_val_accuracy(self) -> list[float]:
        """The peers' mean validation accuracy, per seed."""
        return np.mean(self.val_accuracy, axis=0).tolist()

    def mean_test_accuracy(self) -> list[float]:
        """The peers' mean test accuracy, per seed."""
        return np.mean(self.test_accuracy, axis=0).tolist()

    def rows(self) -> list[dict]:
        """`results.json` rows: one per peer (e.g. `dml/peer0:mlp`), then the peers' mean (`dml`)."""
        rows = [result_row(name, self.seeds, val, test, best_epoch=epochs)
                for name, val, test, epochs in zip(self.peer_names, self.val_accuracy, self.test_accuracy,
                                                   self.best_epoch)]
        rows.append(result_row(self.strategy, self.seeds, self.mean_val_accuracy(), self.mean_test_accuracy(),
                               peers=list(self.peer_names), seconds=round(self.seconds, 2), **self.options))
        return rows
