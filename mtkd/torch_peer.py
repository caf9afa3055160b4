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





def cpu_threads() -> int:
    """The cores this process may run on (XLA on the CPU uses every one of them)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class TorchImageEpoch:
    """`run(i)`: one epoch of the CIFAR protocol's KD step on a zoo student in plain PyTorch, as
    mdistiller trains: the reference network (`mtkd.models.cifar.torch_reference`) in training
    mode, random crop (zero padding 4) and horizontal flip per image, KD from the cached teacher
    logits at T with CE weight alpha, SGD with momentum 0.9 and weight decay. Same work as
    `mtkd.image_bench.jax_image_epoch`."""

    def __init__(self, arch: str, x: np.ndarray, y: np.ndarray, teacher_logits: np.ndarray, config,
                 threads: int | None = None, seed: int = 0):
        from mtkd.models.cifar.torch_reference import build_torch_model

        torch = import_torch()
        if threads is not None:
            torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.torch = torch
        self.x = torch.from_numpy(np.array(x, np.float32)).permute(0, 3, 1, 2).contiguous()  # NCHW
        self.y = torch.from_numpy(np.array(y, np.int64))
        self.teacher_logits = torch.from_numpy(np.array(teacher_logits, np.float32))
        self.model = build_torch_model(arch, int(self.teacher_logits.shape[-1])).train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.learning_rate, momentum=0.9,
                                         weight_decay=config.weight_decay)
        self.batch_size, self.alpha, self.temperature = config.batch_size, config.alpha, config.temperature
        self.steps = int(x.shape[0]) // config.batch_size

    def augment(self, images, generator):
        torch = self.torch
        batch, _, height, width = images.shape
        padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
        offsets = torch.randint(0, 9, (batch, 2), generator=generator)
        flips = torch.rand(batch, generator=generator) < 0.5
        crops = [padded[i, :, oy:oy + height, ox:ox + width] for i, (oy, ox) in enumerate(offsets.tolist())]
        out = torch.stack(crops)
        return torch.where(flips[:, None, None, None], out.flip(-1), out)

    def __call__(self, i: int) -> None:
        torch = self.torch
        functional = torch.nn.functional
        generator = torch.Generator().manual_seed(int(i))
        order = torch.randperm(self.x.shape[0], generator=generator)
        for s in range(self.steps):
            index = order[s * self.batch_size:(s + 1) * self.batch_size]
            logits = self.model(self.augment(self.x[index], generator))
            target = functional.softmax(self.teacher_logits[index] / self.temperature, dim=-1)
            kd = functional.kl_div(functional.log_softmax(logits / self.temperature, dim=-1), target,
                                   reduction="batchmean")
            loss = self.alpha * functional.cross_entropy(logits, self.y[index]) + \
                (1 - self.alpha) * self.temperature ** 2 * kd
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()

__all__ = ["INSTALL_HINT", "TorchEpoch", "TorchImageEpoch", "build_mlp", "copy_mlp_params", "cpu_threads",
           "distillation_loss", "import_torch"]
