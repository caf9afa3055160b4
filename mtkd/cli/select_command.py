"""`mtkd select train`: learn a teacher selector, then distil (or, jointly, train) a student with it.

Three procedures: `population` (default; `mtkd.agents.population`): a vmapped population of students,
each trained for the whole run from its own random teacher mask, gives each teacher's effect on the
final student; the policy it moves is saved and the final students are distilled with it;
`joint` (`mtkd.agents.joint`): each seed's final student is trained beside its own selector, which
learns from half-epoch counterfactual credit; `episodic`: REINFORCE on short episodes first, then a
final student with the saved policy (the earliest procedure).
"""

from __future__ import annotations

import argparse

from mtkd.config_flags import add_config_flags, flag_name, given_values
from mtkd.cli.options import (add_data_options, add_out_option, add_run_options, add_student_options,
                              checkpoint_config_from, seeds_from, student_spec_from, train_config_from)
from mtkd.errors import ConfigError


def register(subparsers) -> None:
    parser = subparsers.add_parser("select", help="learn which teachers to distil from (RL-KD)",
                                   description="Learn a teacher selector by reinforcement learning.")
    commands = parser.add_subparsers(dest="select_command", metavar="ACTION", required=True)
    train = commands.add_parser(
        "train", help="train a selector policy, then distil a final student with it",
        description="--procedure population (default): train --generations generations of --population "
                    "students, each for the whole run (or --horizon epochs) from its own random teacher mask, all "
                    "vmapped; fit each teacher's effect on the students' final validation metric by least squares; "
                    "move the policy by that evidence; save it and distil --seeds students with it. "
                    "--procedure joint: train each of --seeds students beside its own selector, "
                    "which learns from per-teacher counterfactual credit rounds (branches of the student's own "
                    "state, same batches, rewarded by the validation gain); write results.json, metrics/, "
                    "selector.jsonl and policy/. --procedure episodic: optionally warm up a student, train a "
                    "policy by REINFORCE on short episodes (N students per episode), save it, then distil a "
                    "final student with it. Rewards use the validation split carved from train, never the "
                    "test split.")
    add_data_options(train)
    train.add_argument("--teachers", default=None,
                       help="teacher pool directory (default: the data set's default pool, trained on first use)")
    add_out_option(train, "policy/, selection.jsonl or selector.jsonl, results.json, metrics/")
    add_run_options(train, "selector run")
    add_student_options(train)
    train.add_argument("--procedure", default="population", choices=sorted(PROCEDURES),
                       help="population: credit from whole runs of a vmapped population of students (default); "
                            "joint: train each student beside its own selector from half-epoch credit; episodic: "
                            "REINFORCE on short episodes, then a final student with the saved policy")

    # One flag per config field (`mtkd.config_flags`): the flag, the field and the ablation's [rl]
    # key are one name. A setting both procedures have (policy_arch, reward, ...) is one flag.
    add_config_flags(train.add_argument_group("selector (population: PopulationConfig; joint: SelectorConfig; "
                                              "episodic: AgentConfig and EnvConfig; names as in an ablation's [rl] "
                                              "section)"),
                     [(procedure, cls) for procedure, classes in procedure_configs().items() for cls in classes])
    episodic = train.add_argument_group("episodic procedure only")
    episodic.add_argument("--episode-epochs", type=int, default=2,
                          help="student epochs per episode (default: %(default)s)")
    episodic.add_argument("--warmup-epochs", type=int, default=0,
                          help="train the student alone this long first; episodes start from it (default: %(default)s)")

    final = train.add_argument_group("final student")
    final.add_argument("--greedy", action="store_true", help="episodic: select greedily (p > 0.5) instead of sampling")
    final.add_argument("--compare", action="append", default=[], metavar="STRATEGY",
                       help="also distil with this strategy (e.g. uniform), for a row to compare; repeatable")
    train.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    return PROCEDURES[args.procedure](args)


def procedure_configs() -> dict[str, tuple]:
    """The configs whose fields are each procedure's flags (light imports: no JAX)."""
    from mtkd.agents.config import AgentConfig
    from mtkd.agents.population_config import PopulationConfig
    from mtkd.agents.selector_config import SelectorConfig
    from mtkd.envs.config import EnvConfig

    return {"population": (PopulationConfig,), "joint": (SelectorConfig,), "episodic": (AgentConfig, EnvConfig)}


def _procedure_options(args: argparse.Namespace) -> dict[str, dict]:
    """{config name: the options given for it} for `args.procedure`; a flag of the other procedure
    only is refused, naming it. --agent-seed (a `SelectorConfig` field) seeds both."""
    every = procedure_configs()
    ours = {field for cls in every[args.procedure] for field in given_values(args, cls)} | {"agent_seed"}
    for procedure, classes in every.items():
        for name in sorted({field for cls in classes for field in given_values(args, cls)} - ours):
            raise ConfigError(f"{flag_name(name)} applies to --procedure {procedure} only")
    return {cls.__name__: given_values(args, cls) for cls in every[args.procedure]}


def _select(args: argparse.Namespace, selector, **episodic) -> int:
    """Every procedure: the flags become `mtkd.api.select`'s arguments."""
    from mtkd import api

    result = api.select(student_spec_from(args), args.dataset, args.teachers, procedure=args.procedure,
                        selector=selector, compare=args.compare, seeds=seeds_from(args), out=args.out,
                        train=train_config_from(args), data_dir=args.data_dir, val_fraction=args.val_fraction,
                        split_seed=args.split_seed, val_indices=args.val_indices, val_split=args.val_split,
                        checkpoint=checkpoint_config_from(args), overwrite=args.overwrite, resume=args.resume,
                        episodic=episodic)
    if not result.reused:
        print(result.table())
    return 0


def run_joint(args: argparse.Namespace) -> int:
    return _select(args, _procedure_options(args)["SelectorConfig"])


def run_population(args: argparse.Namespace) -> int:
    return _select(args, _procedure_options(args)["PopulationConfig"])


def run_episodic(args: argparse.Namespace) -> int:
    options = _procedure_options(args)
    return _select(args, options["AgentConfig"], episode_epochs=args.episode_epochs,
                   warmup_epochs=args.warmup_epochs, agent_seed=args.agent_seed, greedy=args.greedy,
                   env=options["EnvConfig"])


PROCEDURES = {"population": run_population, "joint": run_joint, "episodic": run_episodic}
