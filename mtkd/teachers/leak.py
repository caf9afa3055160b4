"""The validation leak check: a teacher much better on validation than on test has likely seen the
validation examples (an external teacher fitted on the data set's whole `train` split, from which
mtkd carves its validation).

Validation and test are two independent samples of the same distribution for a teacher that never
saw either, so its two accuracies differ only by sampling noise: under that hypothesis the gap
(validation - test) has standard error sqrt(p (1 - p) (1/n_val + 1/n_test)), p the pooled
accuracy. A gap above `SIGMAS` standard errors (about one chance in 700 for an honest teacher) is
flagged. It is a diagnostic, read at report time: nothing is chosen on test.

A flagged teacher biases every choice made on validation: the epoch reported for each student,
`best_subset` (whose subsets are ranked on validation), `weighted` and the other weightings read
on validation, and the selector's reward.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

SIGMAS = 3.0
BIASED_CHOICES = ("the epoch reported for each student (chosen on validation)",
                  "best_subset (subsets ranked on validation)",
                  "weighted and val_acc_weighted_confidence (weights from validation accuracy)",
                  "the selector's reward (validation loss or accuracy)")


def leak_gap(val_accuracy: float, test_accuracy: float, num_val: int, num_test: int) -> dict[str, Any]:
    """{"gap", "se", "sigmas", "flagged"}: the validation - test gap of one teacher in
    standard errors of that gap under "never saw either split"."""
    pooled = (val_accuracy * num_val + test_accuracy * num_test) / (num_val + num_test)
    se = math.sqrt(max(pooled * (1 - pooled), 0.0) * (1 / num_val + 1 / num_test))
    gap = val_accuracy - test_accuracy
    sigmas = gap / se if se > 0 else (math.inf if gap > 0 else 0.0)
    return {"gap": gap, "se": se, "sigmas": sigmas if math.isfinite(sigmas) else None,
            "flagged": bool(gap > 0 and sigmas > SIGMAS)}


def flag_teachers(teachers: Sequence[dict], num_val: int, num_test: int) -> list[dict]:
    """The teacher rows (`name`, `val_accuracy`, `test_accuracy`), each with its `leak` check."""
    return [{**teacher, "leak": leak_gap(teacher["val_accuracy"], teacher["test_accuracy"], num_val, num_test)}
            for teacher in teachers]


def pool_rows(pool) -> list[dict]:
    """A `TeacherPool`'s teachers as rows: name, validation and test accuracy, and the leak check."""
    rows = [{"name": n, "val_accuracy": v, "test_accuracy": t}
            for n, v, t in zip(pool.names, pool.val_accuracy, pool.test_accuracy)]
    return flag_teachers(rows, pool.num_val, pool.num_test)


def leak_summary(teachers: Sequence[dict]) -> dict[str, Any] | None:
    """results.json's `validation_leak`: the flagged teachers and the choices they bias, or None
    when no teacher is flagged (or none was checked)."""
    flagged = [t["name"] for t in teachers if t.get("leak", {}).get("flagged")]
    if not flagged:
        return None
    return {"flagged": flagged, "sigmas": SIGMAS, "biased": list(BIASED_CHOICES),
            "remedy": "give a validation split the teachers never saw: --val-split NAME (the data set's own) or "
                      "--val-indices FILE (the examples left out of the teachers' training)"}


def leak_message(teachers: Sequence[dict]) -> str | None:
    """One paragraph for the log and results.md naming each flagged teacher and what it biases."""
    summary = leak_summary(teachers)
    if summary is None:
        return None
    named = ", ".join(f"`{t['name']}` ({100 * t['val_accuracy']:.2f}% validation, {100 * t['test_accuracy']:.2f}% "
                      f"test, {t['leak']['sigmas']:.1f} SE)" if t["leak"]["sigmas"] is not None else f"`{t['name']}`"
                      for t in teachers if t.get("leak", {}).get("flagged"))
    return (f"**Validation leak suspected**: {named} scored more than {SIGMAS:g} standard errors higher on "
            f"validation than on test, as a teacher that saw the validation examples does. Biased by it: "
            f"{'; '.join(BIASED_CHOICES)}. Remedy: {summary['remedy']}.")


__all__ = ["BIASED_CHOICES", "SIGMAS", "flag_teachers", "leak_gap", "leak_message", "leak_summary", "pool_rows"]
