"""Where default pools live (`ensure_pool`, in `mtkd.distill.pool_training`, trains one on first use)."""

from __future__ import annotations

import os
from pathlib import Path

from mtkd.cache_dirs import cache_root

POOL_DIR_ENV = "MTKD_POOL_DIR"
PRESET_DIR = Path(__file__).parent / "presets"


def preset_names() -> list[str]:
    """The pool presets shipped with mtkd (`mtkd teachers train --pool NAME`)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def default_pool_dir(dataset: str, spec: str = "default") -> Path:
    """`$MTKD_POOL_DIR/<dataset>-<spec>`, else `~/.cache/mtkd/pools/<dataset>-<spec>`."""
    root = os.environ.get(POOL_DIR_ENV) or str(cache_root() / "pools")
    return Path(root) / f"{dataset}-{Path(str(spec)).stem}"
