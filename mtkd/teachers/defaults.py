"""Where default pools live (`ensure_pool`, in `mtkd.distill.pool_training`, trains one on first use)."""

from __future__ import annotations

import os
from pathlib import Path


POOL_DIR_ENV = "MTKD_POOL_DIR"


def default_pool_dir(dataset: str, spec: str = "default") -> Path:
    """`$MTKD_POOL_DIR/<dataset>-<spec>`, else `~/.cache/mtkd/pools/<dataset>-<spec>`."""
    root = os.environ.get(POOL_DIR_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "mtkd", "pools")
    return Path(root) / f"{dataset}-{Path(str(spec)).stem}"
