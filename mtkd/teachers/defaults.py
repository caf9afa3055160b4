"""Where default pools live, and training one on first use."""

from __future__ import annotations

import os
from pathlib import Path

from mtkd.teachers.pool import TeacherPool
from mtkd.teachers.spec import load_pool_spec
from mtkd.teachers.training import train_pool

POOL_DIR_ENV = "MTKD_POOL_DIR"


def default_pool_dir(dataset: str, spec: str = "default") -> Path:
    """`$MTKD_POOL_DIR/<dataset>-<spec>`, else `~/.cache/mtkd/pools/<dataset>-<spec>`."""
    root = os.environ.get(POOL_DIR_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "mtkd", "pools")
    return Path(root) / f"{dataset}-{Path(str(spec)).stem}"


def ensure_pool(dataset: str = "mnist1d", spec: str = "default", out_dir: str | Path | None = None,
                data_dir: str | None = None, val_fraction: float = 0.1, split_seed: int = 0) -> TeacherPool:
    """The pool of `spec` for `dataset`: reused if already trained in `out_dir`, else trained."""
    pool_spec = load_pool_spec(spec, dataset)
    out = Path(out_dir) if out_dir is not None else default_pool_dir(dataset, spec)
    # The cache's own directory: a training that was interrupted is continued.
    return train_pool(dataset, pool_spec, out, data_dir=data_dir, val_fraction=val_fraction, split_seed=split_seed,
                      resume=True)
