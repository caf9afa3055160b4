"""Base class of the embedded builders."""

from __future__ import annotations

import tensorflow_datasets as tfds


class EmbeddedBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A builder whose data is generated locally: no URLs, no checksums file, no registration.

    Subclasses pass `skip_registration=True` too: mtkd instantiates them directly, so they never
    clash with a TFDS catalog data set of the same name.
    """

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        # TFDS looks for a checksums file next to the builder's source; for a class inside an
        # installed package it evaluates `importlib_resources.abc.Traversable`, and TFDS only
        # declares the `importlib_resources` dependency for Python < 3.9, so that lookup raises
        # ModuleNotFoundError. No source path means no checksums lookup, which these builders
        # do not need: they download nothing.
        return None
