"""`--help` lists every name the registries hold: the static copies in `mtkd.cli.names` (the
command modules import no JAX) are checked against the registries here."""

from __future__ import annotations

import mtkd.selector_strategy  # noqa: F401  (registers `rl`)
from mtkd.agents.policies import POLICIES
from mtkd.agents.population_config import POPULATION_REWARDS
from mtkd.envs.rewards import REWARDS
from mtkd.cli import names
from mtkd.cli.main import build_parser
from mtkd.distill.terms import TERMS
from mtkd.fusion import STRATEGIES
from mtkd.models import MODELS


def bare(name: str) -> str:
    return name.split(":")[0].split("[")[0]


def test_the_copies_are_the_registries():
    assert sorted(bare(n) for n in names.STRATEGIES) == STRATEGIES.names()
    assert sorted(names.LOSS_TERMS) == TERMS.names()
    assert sorted(names.ARCHITECTURES) == MODELS.names()
    assert sorted(names.REWARDS) == REWARDS.names()
    assert sorted(names.POLICIES) == POLICIES.names()
    assert sorted(names.POPULATION_REWARDS) == POPULATION_REWARDS.names()


def help_of(*command: str) -> str:
    parser = build_parser()
    for word in command:
        parser = next(action for action in parser._actions if hasattr(action, "choices") and action.choices
                      and word in action.choices).choices[word]
    return " ".join(parser.format_help().split())  # line breaks as spaces


def test_every_help_lists_the_registries_names():
    distill = help_of("distill")
    assert all(bare(n) in distill for n in names.STRATEGIES + names.LOSS_TERMS + names.ARCHITECTURES)
    select = help_of("select", "train")
    assert all(n in select for n in names.POLICIES + names.REWARDS + names.POPULATION_REWARDS)
