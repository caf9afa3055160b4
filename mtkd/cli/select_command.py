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

from mtkd.config_flags import add_config_flags, config_from_values, flag_name, given_values
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


def _claim_run(args: argparse.Namespace, kind: str, config, student, seeds, interval, check=None, **own):
    """Loads the data and the pool, checks --compare, and claims --out for the run's signature (the
    shared options plus the procedure's `own`): (splits, pool, compared, out, checkpoints), with
    checkpoints None when a resumed run had already finished."""
    from mtkd.envs.sources import load_pool_for
    from mtkd.data.splits import validation_checksum
    from mtkd.distill.experiment import build_strategies
    from mtkd.progress import stderr_line
    from mtkd.run_checkpoints import start_run

    splits, pool = load_pool_for(args.dataset, args.teachers, args.data_dir, args.val_fraction, args.split_seed,
                                 args.val_indices, args.val_split)
    compared = build_strategies(args.compare, pool)  # bad names fail before training
    if check is not None:  # the procedure's own checks against the pool, before --out is claimed
        check(pool)
    signature = {"kind": kind, "dataset": args.dataset, "teachers": args.teachers, "student": student.to_dict(),
                 "config": config.__dict__, "seeds": seeds, **own, "compare": args.compare,
                 "val_fraction": args.val_fraction, "split_seed": args.split_seed,
                 **({"validation": validation_checksum(splits)} if args.val_indices or args.val_split else {})}
    out, checkpoints = start_run(args.out, signature, overwrite=args.overwrite, resume=args.resume,
                                 config=interval, log=stderr_line)
    return splits, pool, compared, out, checkpoints


def run_joint(args: argparse.Namespace) -> int:
    from mtkd.agents.procedure import run_joint_selector, stderr_line
    from mtkd.agents.selector_config import SelectorConfig
    from mtkd.distill.experiment import run_strategies, teacher_rows
    from mtkd.distill.results import format_table, write_results

    config = train_config_from(args)
    student = student_spec_from(args)
    seeds = seeds_from(args)
    interval = checkpoint_config_from(args)
    options = _procedure_options(args)["SelectorConfig"]
    selector = SelectorConfig.from_dict(options, "mtkd select train")
    splits, pool, compared, out, checkpoints = _claim_run(args, "select-joint", config, student, seeds, interval,
                                                          selector=selector.to_dict())
    if checkpoints is None:
        return 0
    log = stderr_line
    log(f"training {len(seeds)} students beside their selectors ({config.epochs} epochs)")
    (out / "metrics").mkdir(parents=True, exist_ok=True)
    rows = [run_joint_selector(splits, pool, out, "rl", selector, student, config, seeds, out / "metrics" / "rl.jsonl",
                               log, checkpoints=checkpoints.loop("rl"))]
    if compared:
        rows += run_strategies(splits, pool, compared, student, config, seeds, metrics_dir=out / "metrics", log=log,
                               checkpoints=checkpoints)[0]
    write_results(out / "results.json", args.dataset, rows, teachers=teacher_rows(pool), student=student.to_dict(),
                  config=config.__dict__, selector={"policy": str(out / "policy"), **selector.to_dict()})
    checkpoints.remove()
    print(format_table(rows, teacher_rows(pool)))
    return 0


def run_population(args: argparse.Namespace) -> int:
    from mtkd.agents.population import run_population_selector
    from mtkd.agents.population_config import PopulationConfig
    from mtkd.distill.experiment import run_strategies, teacher_rows
    from mtkd.distill.results import format_table, write_results
    from mtkd.progress import stderr_line

    config = train_config_from(args)
    student = student_spec_from(args)
    seeds = seeds_from(args)
    interval = checkpoint_config_from(args)
    selector = PopulationConfig.from_dict(_procedure_options(args)["PopulationConfig"], "mtkd select train")
    splits, pool, compared, out, checkpoints = _claim_run(
        args, "select-population", config, student, seeds, interval,
        check=lambda pool: selector.check_pool(len(pool.names)), selector=selector.to_dict())
    if checkpoints is None:
        return 0
    log = stderr_line
    rows = [run_population_selector(splits, pool, out, "rl", selector, student, config, seeds, out / "metrics", log,
                                    checkpoints=checkpoints)]
    if compared:
        rows += run_strategies(splits, pool, compared, student, config, seeds, metrics_dir=out / "metrics", log=log,
                               checkpoints=checkpoints)[0]
    write_results(out / "results.json", args.dataset, rows, teachers=teacher_rows(pool), student=student.to_dict(),
                  config=config.__dict__, selector={"policy": str(out / "policy"), "procedure": "population",
                                                    **selector.to_dict()})
    checkpoints.remove()
    print(format_table(rows, teacher_rows(pool)))
    return 0


def run_episodic(args: argparse.Namespace) -> int:
    from mtkd.agents.config import AgentConfig
    from mtkd.agents.procedure import stderr_line, train_and_save_policy
    from mtkd.envs.config import EnvConfig
    from mtkd.distill.experiment import build_strategies, run_strategies, teacher_rows
    from mtkd.distill.results import format_table, write_results

    # Every option is validated before any data is loaded or anything is written.
    interval = checkpoint_config_from(args)
    config = train_config_from(args)
    student = student_spec_from(args)
    seeds = seeds_from(args)
    if args.warmup_epochs < 0:
        raise ConfigError(f"--warmup-epochs must be >= 0, got {args.warmup_epochs}")
    options = _procedure_options(args)
    env_config = config_from_values(EnvConfig, {"student": student, "train": config.replace(epochs=args.episode_epochs),
                                                **options["EnvConfig"]}, "mtkd select train")
    agent_config = AgentConfig.from_dict(options["AgentConfig"], "mtkd select train")
    agent_seed = 0 if args.agent_seed is None else args.agent_seed

    splits, pool, compared, out, checkpoints = _claim_run(
        args, "select", config, student, seeds, interval, env=env_config.to_dict(), agent=agent_config.to_dict(),
        agent_seed=agent_seed, warmup_epochs=args.warmup_epochs, greedy=args.greedy)
    if checkpoints is None:
        return 0
    log = stderr_line

    policy_dir, records = train_and_save_policy(
        splits, pool, out, env_config, agent_config, agent_seed=agent_seed, warmup_epochs=args.warmup_epochs,
        warmup_config=config, extra={"dataset": args.dataset, "teachers": args.teachers}, log=log,
        checkpoints=checkpoints)

    strategies = build_strategies(["rl"], pool, {"policy": str(policy_dir), "greedy": args.greedy}) + compared
    log(f"distilling the final student ({len(seeds)} seeds, {config.epochs} epochs)")
    rows, _ = run_strategies(splits, pool, strategies, student, config, seeds, metrics_dir=out / "metrics", log=log,
                             checkpoints=checkpoints)
    write_results(out / "results.json", args.dataset, rows, teachers=teacher_rows(pool), student=student.to_dict(),
                  config=config.__dict__, selector={"policy": str(policy_dir), "greedy": args.greedy,
                                                    "final_selection": records[-1]["selection"]})
    checkpoints.remove()
    print(format_table(rows, teacher_rows(pool)))
    return 0


PROCEDURES = {"population": run_population, "joint": run_joint, "episodic": run_episodic}
