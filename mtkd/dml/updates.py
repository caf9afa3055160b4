"""One mutual-learning step over all peers (two update schemes) and one epoch as a `lax.scan`.

A step is `step(states, x, y, teacher_target) -> (states, losses (K,))`: states is a tuple over
stacks of `StudentState` (leaves with a leading peer axis), x (B, ...), y (B,), teacher_target
(B, C) or None. `loss_fn(logits (B, C), labels, peer_probs (K, B, C), peer, teacher_target)` is
`dml_loss` with its temperatures bound.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from mtkd.distill.steps import StudentState, apply_model, epoch_batches
from mtkd.dml.loss import peer_probabilities
from mtkd.dml.peers import PeerStacks
from mtkd.errors import ConfigError


def make_simultaneous_step(stacks: PeerStacks, optimizer: optax.GradientTransformation,
                           loss_fn: Callable, temperature: float):
    """Every peer's loss from the same predictions, every peer updated at once.

    One forward and one backward pass per stack: the forward keeps its `vjp`, the losses are
    differentiated with respect to the logits, and the logit gradients are pulled back.
    """
    def step(states, x, y, teacher_target):
        forwards = [jax.vjp(lambda p, g=graphdef: jax.vmap(lambda q: apply_model(g, q, x)[0])(p), state.params)
                    for graphdef, state in zip(stacks.graphdefs, states)]
        logits = stacks.to_peer_order([logits for logits, _ in forwards])
        probs = peer_probabilities(logits, temperature)
        # The targets are constants, so d(sum_k L_k)/d z_k = dL_k/d z_k: one vmap gives every peer's.
        losses, logit_grads = jax.vmap(jax.value_and_grad(loss_fn), in_axes=(0, None, None, 0, None))(
            logits, y, probs, jnp.arange(stacks.num_peers), teacher_target)
        new_states = []
        for g, (state, (_, pull_back)) in enumerate(zip(states, forwards)):
            grads = pull_back(stacks.of_stack(logit_grads, g))[0]
            updates, opt_state = jax.vmap(optimizer.update)(grads, state.opt_state, state.params)
            new_states.append(StudentState(optax.apply_updates(state.params, updates), opt_state))
        return tuple(new_states), losses

    return step


def make_sequential_step(stacks: PeerStacks, optimizer: optax.GradientTransformation,
                         loss_fn: Callable, temperature: float):
    """The paper's scheme: peers updated in turn on the batch, peer k's KL terms using the
    predictions of peers 0..k-1 after their update (and of peers k+1.. before theirs).

    Only the peer just updated has new predictions, so each turn recomputes that peer's logits
    alone; peer k's own forward pass (kept as a `vjp`) is still valid at its turn because only
    earlier peers have changed. Peers are taken out of their stack one at a time: the updates
    are sequential by definition.
    """
    def step(states, x, y, teacher_target):
        forwards = [jax.vjp(lambda p, k=k: apply_model(stacks.graphdefs[stacks.slot(k)[0]], p, x)[0],
                            stacks.peer(states, k).params) for k in range(stacks.num_peers)]
        current = [logits for logits, _ in forwards]
        losses = []
        for k, (_, pull_back) in enumerate(forwards):
            probs = peer_probabilities(jnp.stack(current), temperature)
            loss, logit_grad = jax.value_and_grad(loss_fn)(current[k], y, probs, k, teacher_target)
            state = stacks.peer(states, k)
            updates, opt_state = optimizer.update(pull_back(logit_grad)[0], state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            states = stacks.with_peer(states, k, StudentState(params, opt_state))
            if k + 1 < stacks.num_peers:  # the last peer's new predictions are not needed this step
                current[k] = apply_model(stacks.graphdefs[stacks.slot(k)[0]], params, x)[0]
            losses.append(loss)
        return states, jnp.stack(losses)

    return step


UPDATE_SCHEMES = {"sequential": make_sequential_step, "simultaneous": make_simultaneous_step}


def update_scheme(name: str) -> Callable:
    """The step factory of an update scheme, by name."""
    if name not in UPDATE_SCHEMES:
        raise ConfigError(f"unknown DML update scheme {name!r}; choose one of {', '.join(UPDATE_SCHEMES)}")
    return UPDATE_SCHEMES[name]


def make_dml_epoch(step, batch_size: int):
    """Returns `epoch(states, key, x (N, ...), y (N,), teacher_target (N, C) | None) ->
    (states, mean training loss per peer (K,))`; one `lax.scan` over a fresh permutation."""

    def epoch(states, key, x, y, teacher_target):
        batches = epoch_batches(key, x.shape[0], batch_size)

        def body(states, index):
            target = None if teacher_target is None else teacher_target[index]
            return step(states, x[index], y[index], target)

        states, losses = jax.lax.scan(body, states, batches)
        return states, losses.mean(axis=0)

    return epoch
