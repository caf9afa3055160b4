"""mtkd's Python API: what every command does, callable from a script or a notebook.

- `distill`: a student from a teacher pool under one or more fusion strategies (`mtkd distill`).
- `select`: train the learned teacher selector and report its students (`mtkd select train`).
- `ablate`: an ablation config's every row (`mtkd ablate`).
- `train_teachers`: a pool spec's teachers (`mtkd teachers train`).

A student is a Flax NNX module class (built as `Class(input_shape, num_classes, *, rngs,
**options)` and returning `(logits, features)`), an architecture name or a `ModelSpec`. Data is
a data set name or NumPy arrays (`x_train`, `y_train`, `x_test`, `y_test`, optionally `x_val`,
`y_val`). Teachers are a pool directory, the data set's default pool (None), or each teacher's
logits as NumPy arrays (`{"name": {"train": ..., "test": ...}}`, plus "val" where the data has
`x_val`). Every run writes the same files as its command and returns a `RunResult`
(`train_teachers` returns the `TeacherPool`).
"""

import mtkd.selector_strategy  # noqa: F401  (the `rl` strategy, registered once there)
from mtkd.api.inputs import import_arrays, student_spec
from mtkd.api.result import RunResult
from mtkd.api.runs import ablate, distill, select, train_teachers

__all__ = ["RunResult", "ablate", "distill", "import_arrays", "select", "student_spec", "train_teachers"]
