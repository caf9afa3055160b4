"""One function over a stack of students, in chunks that fit in memory.

The trainer vmaps a seed's epoch over every student of a run: seeds, `best_subset`'s (subset,
seed) pairs, the selector's population. A vmapped program holds every student's activations at
once, so 45 resnet8x4 students on CIFAR-100 need about 31 GB. `seed_map(fn, in_axes, chunk)` runs
at most `chunk` students side by side (vmapped) per device and the chunks one after another
inside the same compiled program (`jax.lax.map` over chunks), so memory grows with the
chunk, not with the students. Each student computes what it computes alone; the chunks only
change how XLA batches the arithmetic.

`fitting_chunk` chooses the chunk when the run leaves it to mtkd (`vmap_chunk = 0`). On a CPU,
a program with convolutions runs its students one at a time (`CPU_CONVOLUTIONS`). Otherwise, all
students at once when XLA's memory analysis of the compiled program fits a share of the device's
memory (`memory_budget`); otherwise the chunk that the per-student cost says fits, verified the
same way, halved until it does. Each trial is a compilation and no execution, so nothing runs out of memory to
find out, and the persistent compilation cache keeps the one that is used. The share is of the
device's whole memory, not of what is free at the moment: chunked and unchunked programs agree
only to rounding (XLA batches the arithmetic differently), so the choice must depend on the
machine alone for the same config and seed to give the same numbers on it.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from mtkd.errors import ConfigError
from mtkd.machine import host_memory_bytes

# The share of a device's memory a program may plan for. XLA's analysis leaves out the runtime's
# own buffers, the arrays other programs keep alive (the pool's cached logits) and other
# processes; on the CPU, the process also keeps memory that earlier programs freed (the heap is
# not given back at once). Measured on the 2-core VM: 15 vmapped resnet8x4 students planned at
# 12.1 GiB peaked at 17.5 GiB resident.
ACCELERATOR_SHARE = 0.8  # of the allocator's limit, itself a share of the device's memory
HOST_SHARE = 0.4  # of the host's total memory

# Vmapped over students, a convolution with each student's own kernel is one grouped convolution,
# which XLA:CPU runs slower than the students' convolutions one after another, with workspace
# its memory plan does not show. Measured on the 2-core VM (resnet8x4, batch 64, the CIFAR-100
# protocol's step, experiments/students_in_turn.py): 4 students vmapped 33.6 images/s, one at a
# time 49.0; inference of 2 students at batch 1024 vmapped took 42 s and 10.1 GiB resident for a
# plan of 3.0 GiB, one student alone 3.5 s.
CPU_CONVOLUTIONS = "a vmapped convolution is a grouped one, slower there and larger than planned"
_said: set[str] = set()  # the CPU rule is said once per process


def seed_map(fn: Callable, in_axes: Sequence[int | None], chunk: int = 0, devices: int = 1) -> Callable:
    """`jax.vmap(fn, in_axes)` (axes 0 or None) that runs at most `chunk` students at once on
    each of `devices` devices (0: all at once). The students axis must divide by `devices`, as the
    trainer's placement pads it to."""
    vmapped = jax.vmap(fn, in_axes=tuple(in_axes))
    if not chunk:
        return vmapped
    mapped = [i for i, axis in enumerate(in_axes) if axis == 0]

    def chunked(*args):
        count = jax.tree.leaves(args[mapped[0]])[0].shape[0]
        per_device = count // devices
        if per_device <= chunk:
            return vmapped(*args)

        def one(students):
            full = list(args)
            for i, part in zip(mapped, students):
                full[i] = part
            return fn(*full)

        def per_device_students(students):
            """(per_device, ...) leaves: whole chunks in turn, then the rest side by side. (Shapes
            are spelt out: `lax.map(batch_size=)` reshapes with -1, which fails on empty leaves.)"""
            whole = per_device // chunk * chunk
            chunks = jax.tree.map(lambda a: a[:whole].reshape(whole // chunk, chunk, *a.shape[1:]), students)
            out = jax.tree.map(lambda a: a.reshape(whole, *a.shape[2:]), jax.lax.map(jax.vmap(one), chunks))
            if whole == per_device:
                return out
            rest = jax.vmap(one)(jax.tree.map(lambda a: a[whole:], students))
            return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), out, rest)

        # (devices * per_device, ...) -> (devices, per_device, ...): a device's students stay on it.
        split = tuple(jax.tree.map(lambda a: a.reshape(devices, per_device, *a.shape[1:]), args[i]) for i in mapped)
        out = jax.vmap(per_device_students)(split)
        return jax.tree.map(lambda a: a.reshape(count, *a.shape[2:]), out)

    return chunked


def memory_budget(device) -> float | None:
    """What one program may plan for on `device`: `ACCELERATOR_SHARE` of its allocator's limit,
    or on a CPU `HOST_SHARE` of the host's total memory; None where neither is known. Fixed for a
    machine, never what is free at the moment (see the module's docstring)."""
    stats = device.memory_stats() or {}
    if "bytes_limit" in stats:
        return ACCELERATOR_SHARE * int(stats["bytes_limit"])
    total = host_memory_bytes()
    return None if total is None else HOST_SHARE * total


def program_bytes(lowered) -> int | None:
    """The memory a lowered program plans for on one device: its temporaries, arguments and
    outputs (donated arguments counted once), from XLA's analysis of the compiled program."""
    stats = lowered.compile().memory_analysis()
    if stats is None:
        return None
    return int(stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes
               - stats.alias_size_in_bytes)


def has_convolution(lowered) -> bool:
    """Whether a lowered program convolves (its StableHLO text)."""
    return "stablehlo.convolution" in lowered.as_text()


def fitting_chunk(lower: Callable[[int], Any], per_device: int, device, log: Callable[[str], None] | None = None,
                  what: str = "students") -> int:
    """The chunk (0: every student at once) whose program fits `device`'s `memory_budget`; on a
    CPU, 1 for a program with convolutions (see `CPU_CONVOLUTIONS`). lower(chunk) -> the program
    lowered with that chunk. Refuses, in one line, when not even one student at a time fits."""
    budget = memory_budget(device)
    whole = lower(0)
    if per_device > 1 and device.platform == "cpu" and has_convolution(whole):
        if log and not _said:
            _said.add("cpu")
            log(f"  students of a convolutional model train and are evaluated one at a time on the CPU "
                f"({CPU_CONVOLUTIONS}); set vmap_chunk to choose")
        chunk = 1
    else:
        needed = program_bytes(whole) if budget is not None else None
        if needed is None or needed <= budget:
            return 0
        chunk = max(1, min(per_device - 1, int(per_device * budget / needed)))  # if cost grows with the chunk
    while True:
        chunk = -(-per_device // -(-per_device // chunk))  # equal chunks: no remainder program to compile
        size = program_bytes(lower(chunk))
        if budget is None or size <= budget:
            if log and chunk > 1:
                log(f"  {per_device} {what} need {needed / 2**30:.1f} GiB at once, {budget / 2**30:.1f} GiB may be "
                    f"planned for: {chunk} at a time ({size / 2**30:.1f} GiB); set vmap_chunk to choose")
            return chunk
        if chunk == 1:
            raise ConfigError(f"one student alone needs {size / 2**30:.1f} GiB, more than the "
                              f"{budget / 2**30:.1f} GiB it may plan for here; use a smaller batch_size or eval_batch_size")
        chunk = max(1, chunk // 2)


def fitted_program(fn: Callable, in_axes: Sequence[int | None], example_args: Sequence[Any], vmap_chunk: int = 0,
                   devices: int = 1, log: Callable[[str], None] | None = None, what: str = "students",
                   **jit_options) -> Callable:
    """`jax.jit(seed_map(fn, in_axes, chunk, devices), **jit_options)`, the chunk `vmap_chunk` or,
    when 0, the one `fitting_chunk` chooses for `example_args` (arguments of the shapes and
    placement it will be called with, so that the call reuses the executable the choice compiled)."""
    programs: dict[int, Callable] = {}

    def program(chunk: int) -> Callable:
        if chunk not in programs:
            programs[chunk] = jax.jit(seed_map(fn, in_axes, chunk, devices), **jit_options)
        return programs[chunk]

    if vmap_chunk:
        return program(vmap_chunk)
    mapped = next(i for i, axis in enumerate(in_axes) if axis == 0)
    per_device = jax.tree.leaves(example_args[mapped])[0].shape[0] // devices
    return program(fitting_chunk(lambda chunk: program(chunk).lower(*example_args), per_device,
                                 jax.local_devices()[0], log, what))


__all__ = ["ACCELERATOR_SHARE", "HOST_SHARE", "fitted_program", "fitting_chunk", "has_convolution", "memory_budget",
           "program_bytes", "seed_map"]
