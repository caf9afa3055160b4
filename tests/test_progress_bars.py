"""Progress: a tqdm bar of a row's epochs on a terminal, about five plain lines elsewhere."""

from __future__ import annotations

import io
import sys

from mtkd import progress
from mtkd.progress import epoch_reporter, stderr_line


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _records(epochs, start=1):
    return [{"epoch": epoch, "val_accuracy": [epoch / 100, epoch / 50]} for epoch in range(start, epochs + 1)]


def _describe(record):
    return f"mean val accuracy {sum(record['val_accuracy']) / 2:.3f}"


def test_a_terminal_gets_one_bar_per_row_with_the_latest_numbers(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    report = epoch_reporter("uniform", 10, stderr_line, _describe)
    for record in _records(10):
        report(record)
    text = terminal.getvalue()
    assert "uniform" in text and "10/10" in text and "mean val accuracy 0.150" in text  # epoch 10's numbers
    assert "epoch 2/10" not in text  # no plain lines


def test_elsewhere_about_five_lines_and_a_resumed_bar_starts_where_it_resumed(monkeypatch):
    lines = []
    report = epoch_reporter("rl", 10, lines.append, _describe)
    for record in _records(10):
        report(record)
    assert lines == [f"  rl: epoch {e}/10, mean val accuracy {(e / 100 + e / 50) / 2:.3f}" for e in (2, 4, 6, 8, 10)]
    # On a terminal with MTKD_PROGRESS=lines: lines too.
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv(progress.PROGRESS_ENV, "lines")
    report = epoch_reporter("rl", 10, stderr_line, _describe)
    report(_records(2)[-1])
    assert terminal.getvalue() == "  rl: epoch 2/10, mean val accuracy 0.030\n"
    # A run resumed at epoch 7: its bar counts from 6 done.
    monkeypatch.delenv(progress.PROGRESS_ENV)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    report = epoch_reporter("rl", 10, stderr_line, _describe)
    report(_records(7, start=7)[0])
    assert " 6/10" in terminal.getvalue() and " 0/10" not in terminal.getvalue()
    # A line printed mid-run (a stop, a failed row) closes the bar first, after its latest state,
    # and starts on a line of its own; the row's next epoch opens a new bar from there.
    report(_records(8, start=8)[0])
    stderr_line("mtkd: stopped at epoch 8 of 10 of rl")
    text = terminal.getvalue()
    assert "8/10" in text and text.endswith("\nmtkd: stopped at epoch 8 of 10 of rl\n")
    assert progress._open_bar is None
    report(_records(9, start=9)[0])
    assert progress._open_bar is not None and progress._open_bar.n == 9
    progress.close_bar()


def test_a_callers_own_log_gets_lines_even_on_a_terminal(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    lines = []
    report = epoch_reporter("uniform", 5, lines.append, _describe)
    for record in _records(5):
        report(record)
    assert terminal.getvalue() == "" and len(lines) == 5
