"""CA-MKD (Zhang, Chen and Wang, ICASSP 2022): confidence-aware per-example teacher weights.

`w_ik = (1 - softmax_k(CE_ik)) / (K - 1)`, with `CE_ik` teacher k's cross-entropy on the label.
A teacher that is wrong on an example (large CE) gets a large softmax share and so a small
weight; the weights sum to 1 over teachers.

How it differs from `confidence` (`softmax_k(-CE_ik)`): both favour the teacher that is surer of
the true label, but `confidence` is a softmax, so it concentrates on the single best teacher
(weights near one-hot when the CEs differ by a few nats), while CA-MKD only *subtracts* each
teacher's share of the total error, so every teacher keeps at least 0 and at most 1/(K-1): with
four teachers, one confident and three wrong, `confidence` gives the confident one nearly 1 and
CA-MKD gives it 1/3. The feature term of CA-MKD is the loss term `ca_mkd_feature`.
"""

from __future__ import annotations

from mtkd.fusion.strategies import STRATEGIES, FusionStrategy, StrategyContext, StrategyInput, no_argument
from mtkd.fusion.teacher_stats import ca_mkd_weights, teacher_cross_entropy


@STRATEGIES.register("ca_mkd")
def ca_mkd_strategy(context: StrategyContext, argument: str | None) -> FusionStrategy:
    """CA-MKD: per-example weights `(1 - softmax_k(CE_ik)) / (K - 1)`."""
    no_argument("ca_mkd", argument)

    def weights(batch: StrategyInput):
        return ca_mkd_weights(teacher_cross_entropy(batch.teacher_logits, batch.labels))

    return FusionStrategy("ca_mkd", weights)
