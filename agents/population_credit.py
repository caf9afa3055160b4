"""Each teacher's effect on the *final* student, from a population of whole runs.

Student i of a population trains for the whole horizon from the teachers of its own 0/1 mask m_i
(a uniform average over them; an empty mask trains on labels alone), and returns R_i, read once
at the end (the validation metric of its best epoch). The least-squares fit

    R_i = c_g(i) + sum_k beta_k m_ik + noise        (c_g: one intercept per generation)

gives each teacher's effect beta_k on the final metric with its own standard error
se_k = sqrt(sigma^2 [(X^T X)^-1]_kk): a per-teacher noise estimate, from the residuals of the very
runs that measured it. For a policy that selects teacher k with probability p_k, the REINFORCE
gradient with a population baseline is E[(R - b)(m_k - p_k)] = p_k (1 - p_k) beta_k under this
linear model; the Fisher information of the Bernoulli is p_k (1 - p_k), so the natural-gradient
direction is beta_k itself, and least squares is its low-variance estimate (docs/methods.md, The
selector's credit). Pure numpy: the fit is (N x (K + G)) and runs once per generation.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Credit:
    """Per teacher: `effect` (beta_k, in the return's units), its standard error `se`, and `t` =
    effect / se (0 where a teacher was never varied, so nothing is known of it); `dof` residual
    degrees of freedom; `students` the number of runs the fit used."""

    effect: np.ndarray
    se: np.ndarray
    t: np.ndarray
    dof: int
    students: int
    extra_effect: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    extra_t: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

    def to_dict(self) -> dict:
        data = {"effect": self.effect.round(6).tolist(), "se": self.se.round(6).tolist(),
                "t": self.t.round(4).tolist(), "dof": self.dof, "students": self.students}
        if self.extra_effect.size:
            data.update(extra_effect=self.extra_effect.round(6).tolist(), extra_t=self.extra_t.round(4).tolist())
        return data


def minimum_population(num_teachers: int) -> int:
    """The fewest runs that leave least squares a residual to estimate the noise from: K + 2."""
    return num_teachers + 2


def least_squares_credit(masks: np.ndarray, returns: np.ndarray, generation: np.ndarray | None = None,
                         extra: np.ndarray | None = None) -> Credit:
    """`masks` (N, K) of 0/1, `returns` (N,), `generation` (N,) ints (one intercept each; default
    all 0), `extra` (N, E) more regressors fitted alongside (say, which fusion a student used),
    their coefficients and t values returned as `extra_effect` and `extra_t`. A teacher whose mask
    never varies (within the data) gets effect 0, se inf, t 0."""
    masks = np.asarray(masks, np.float64)
    returns = np.asarray(returns, np.float64)
    n, k = masks.shape
    generation = np.zeros(n, int) if generation is None else np.asarray(generation)
    groups = np.unique(generation)
    intercepts = (generation[:, None] == groups[None, :]).astype(np.float64)
    varied = np.array([np.ptp(masks[:, j]) > 0 for j in range(k)])
    extra = np.zeros((n, 0)) if extra is None else np.asarray(extra, np.float64)
    design = np.concatenate([intercepts, masks[:, varied], extra], axis=1)
    coef, _, rank, _ = np.linalg.lstsq(design, returns, rcond=None)
    dof = n - int(rank)
    effect, se = np.zeros(k), np.full(k, np.inf)
    extra_effect, extra_t = np.zeros(extra.shape[1]), np.zeros(extra.shape[1])
    if dof > 0 and rank == design.shape[1]:
        residual = returns - design @ coef
        sigma2 = float(residual @ residual) / dof
        errors = np.sqrt(np.maximum(np.diag(sigma2 * np.linalg.inv(design.T @ design)), 1e-30))
        start, end = len(groups), len(groups) + int(varied.sum())
        effect[varied], se[varied] = coef[start:end], errors[start:end]
        extra_effect, extra_t = coef[end:], coef[end:] / errors[end:]
    t = np.where(np.isfinite(se), effect / np.where(np.isfinite(se), se, 1.0), 0.0)
    return Credit(effect, se, t, max(dof, 0), n, extra_effect, extra_t)


def draw_masks(rng: np.random.Generator, probability: np.ndarray, count: int, exploration: float) -> np.ndarray:
    """`count` 0/1 masks (count, K), teacher k in with probability p_k clipped to
    [exploration, 1 - exploration], so every teacher keeps being varied (and measured)."""
    p = np.clip(np.asarray(probability, np.float64), exploration, 1.0 - exploration)
    return (rng.random((count, p.size)) < p).astype(np.float32)


__all__ = ["Credit", "draw_masks", "least_squares_credit", "minimum_population"]
