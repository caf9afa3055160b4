"""mtkd: multi-teacher knowledge distillation with a learned teacher selector, in JAX."""

__version__ = "0.1.0"
