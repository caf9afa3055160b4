"""Flax NNX models by name. Each returns `(logits, features)`, features a dict of named
intermediate activations (always including `embedding`, the penultimate representation)."""

from mtkd.models.architectures import MODELS, ModelSpec, abstract_model, build_model
from mtkd.models import byot, cifar, cnn1d, cnn2d, mlp, resnet  # noqa: F401  (registers the architectures)

__all__ = ["MODELS", "ModelSpec", "abstract_model", "build_model"]
