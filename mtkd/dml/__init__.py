"""Deep mutual learning (docs/methods.md, Deep mutual learning and self-distillation): K peers trained together, each also learning
from the others' predictions; optionally from a teacher pool too; and the independent-peers
baseline."""

from mtkd.dml.loss import dml_loss, mutual_kl, peer_probabilities
from mtkd.dml.peers import PeerStacks, init_peers, peer_seed, peer_spec_from
from mtkd.dml.result import DMLResult
from mtkd.dml.train import run_dml, run_independent_peers
from mtkd.dml.updates import UPDATE_SCHEMES, make_dml_epoch, make_sequential_step, make_simultaneous_step

__all__ = ["DMLResult", "PeerStacks", "UPDATE_SCHEMES", "dml_loss", "init_peers", "make_dml_epoch",
           "make_sequential_step", "make_simultaneous_step", "mutual_kl", "peer_probabilities", "peer_seed",
           "peer_spec_from", "run_dml", "run_independent_peers"]
