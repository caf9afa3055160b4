"""The PyTorch peer of `mtkd bench --peer torch`: the bench's uniform-fusion student epoch written
as a user would write it in plain PyTorch, to compare step rates in one process.

Same work as the JAX epoch: an MLP student, K cached teacher logits gathered per batch and fused
as the mean of their tempered softmaxes, `alpha * CE + (1 - alpha) * T^2 * KL(q || p_s^T)`
(docs/methods.md, Distillation objective), Adam, full batches of a fresh permutation each epoch,
on `threads` CPU threads. No DataLoader: indexing tensors directly is what torchdistill-style
loops do once the data sit in memory, and it is the faster of the two, so the comparison favours
the peer. PyTorch is optional (`pip install 'mtkd[bench]'`); this module imports it lazily.
"""

from __future__ import annotations

import importlib
from typing import Sequence

import numpy as np

from mtkd.errors import ConfigError

INSTALL_HINT = "pip install 'mtkd[bench]'"


def import_torch():
    """The torch module, or a one-line ConfigError saying how to install it."""
    try:
        return importlib.import_module("torch")
    except ModuleNotFoundError:
        raise ConfigError(f"--peer torch needs PyTorch, which is not installed: {INSTALL_HINT}") from None


def build_mlp(input_size: int, widths: Sequence[int], num_classes: int, seed: int):
    """The bench's MLP student (flatten -> widths, ReLU -> num_classes) as a torch module."""
    torch = import_torch()
    torch.manual_seed(seed)
    sizes = (input_size,) + tuple(int(w) for w in widths)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(torch.nn.Flatten(), *layers, torch.nn.Linear(sizes[-1], num_classes))


def copy_mlp_params(module, params) -> None:
    """Loads an `mtkd` MLP's parameters (nnx state: `hidden[i]`, `head`, kernels (in, out)) into
    `build_mlp`'s module (weights (out, in)), so both compute the same function."""
    torch = import_torch()
    linears = [layer for layer in module if isinstance(layer, torch.nn.Linear)]
    sources = [params["hidden"][i] for i in range(len(linears) - 1)] + [params["head"]]
    with torch.no_grad():
        for linear, source in zip(linears, sources):
            linear.weight.copy_(torch.from_numpy(np.asarray(source["kernel"][...]).T.copy()))
            linear.bias.copy_(torch.from_numpy(np.asarray(source["bias"][...]).copy()))


def distillation_loss(student_logits, labels, teacher_logits, alpha: float, temperature: float):
    """The uniform-fusion distillation loss of one batch: teacher_logits (K, B, C)."""
    torch = import_torch()
    functional = torch.nn.functional
    target = functional.softmax(teacher_logits / temperature, dim=-1).mean(dim=0)
    ce = functional.cross_entropy(student_logits, labels)
    kd = functional.kl_div(functional.log_softmax(student_logits / temperature, dim=-1), target,
                           reduction="batchmean")
    return alpha * ce + (1.0 - alpha) * temperature ** 2 * kd


class TorchEpoch:
    """`run(i)`: epoch i of one student (a fresh permutation from seed i), every step applied."""

    def __init__(self, x: np.ndarray, y: np.ndarray, teacher_logits: np.ndarray, num_classes: int,
                 widths: Sequence[int] = (100, 100), batch_size: int = 128, learning_rate: float = 1e-3,
                 alpha: float = 0.3, temperature: float = 8.0, threads: int | None = None, seed: int = 0):
        torch = import_torch()
        if threads is not None:
            torch.set_num_threads(threads)
        self.torch = torch
        # Own, writable copies (arrays read back from JAX are read-only, which torch warns about).
        self.x = torch.from_numpy(np.array(x, np.float32))
        self.y = torch.from_numpy(np.array(y, np.int64))
        self.teacher_logits = torch.from_numpy(np.array(teacher_logits, np.float32))
        self.model = build_mlp(int(np.prod(x.shape[1:])), widths, num_classes, seed)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=learning_rate)
        self.batch_size, self.alpha, self.temperature = batch_size, alpha, temperature
        self.steps = int(x.shape[0]) // batch_size

    def step(self, index) -> float:
        logits = self.model(self.x[index])
        loss = distillation_loss(logits, self.y[index], self.teacher_logits[:, index], self.alpha, self.temperature)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def __call__(self, i: int) -> None:
        generator = self.torch.Generator().manual_seed(int(i))
        order = self.torch.randperm(self.x.shape[0], generator=generator)
        for s in range(self.steps):
            self.step(order[s * self.batch_size:(s + 1) * self.batch_size])


__all__ = ["INSTALL_HINT", "TorchEpoch", "build_mlp", "copy_mlp_params", "distillation_loss", "import_torch"]
