"""`mtkd select train`: learn a teacher selector, then distil (or, jointly, train) a student with it.

Two procedures: `joint` (default; `agents.joint`): each seed's final student is trained beside its
own selector, which learns from counterfactual per-teacher credit; `episodic`: REINFORCE on short
episodes first, then a final student with the saved policy (the earlier procedure).
"""

from __future__ import annotations

import argparse
import json

from mtkd.cli.options import (add_data_options, add_run_options, add_student_options, checkpoint_config_from,
                              seeds_from, student_spec_from, train_config_from)
from mtkd.errors import ConfigError


def register(subparsers) -> None:
    parser = subparsers.add_parser("select", help="learn which teachers to distil from (RL-KD)",
                                   description="Learn a teacher selector by reinforcement learning.")
    commands = parser.add_subparsers(dest="select_command", metavar="ACTION", required=True)
    train = commands.add_parser(
        "train", help="train a selector policy, then distil a final student with it",
        description="--procedure joint (default): train each of --seeds students beside its own selector, "
                    "which learns from per-teacher counterfactual credit rounds (branches of the student's own "
                    "state, same batches, rewarded by the validation gain); write results.json, metrics/, "
                    "selector.jsonl and policy/. --procedure episodic: optionally warm up a student, train a "
                    "policy by REINFORCE on short episodes (N students per episode), save it, then distil a "
                    "final student with it. Rewards use the validation split carved from train, never the "
                    "test split.")
    add_data_options(train)
    train.add_argument("--teachers", default=None,
                       help="teacher pool directory (default: the data set's default pool, trained on first use)")
    train.add_argument("--out", required=True, help="output directory: policy/, selection.jsonl, results.json")
    add_run_options(train, "selector run")
    add_student_options(train)
    train.add_argument("--procedure", default="joint", choices=sorted(PROCEDURES),
                       help="joint: train each student beside its own selector (default); episodic: REINFORCE on "
                            "short episodes, then a final student with the saved policy")

    joint = train.add_argument_group("joint selector (--procedure joint; names as in an ablation's [rl] section)")
    joint.add_argument("--apply", default=None, help="expected, greedy or sample (default: expected)")
    joint.add_argument("--init", default=None, help="above_chance, val_accuracy or all (default: above_chance)")
    joint.add_argument("--credit-every", type=int, default=None,
                       help="epochs between credit rounds (default: the number of teachers + 1; 0: never learn)")
    joint.add_argument("--credit-horizon", type=float, default=None,
                       help="epochs each credit branch runs before its reward is read (default: 0.5)")
    joint.add_argument("--evidence-threshold", type=float, default=None,
                       help="noise units of a gain that move nothing (default: 1.5)")
    joint.add_argument("--evidence-cap", type=float, default=None,
                       help="largest step of one round, in noise units (default: 6.0)")
    joint.add_argument("--policy-optimizer", default=None, help="the policy's optimizer (default: plain_sgd)")
    joint.add_argument("--norm-decay", type=float, default=None, help="feature statistics decay (default: 0.9)")

    env = train.add_argument_group("environment (--procedure episodic: one episode = a few student epochs)")
    env.add_argument("--episode-epochs", type=int, default=2, help="student epochs per episode (default: %(default)s)")
    env.add_argument("--updates-per-decision", type=int, default=1,
                     help="minibatches trained with one selection (default: %(default)s)")
    env.add_argument("--reward", default=None,
                     help="val_calibrated_loss_gain, val_loss_gain, val_acc_gain, terminal_val_acc or "
                          "neg_train_loss (default: val_calibrated_loss_gain joint, val_loss_gain episodic)")
    env.add_argument("--eval-every", type=int, default=1,
                     help="decisions between validation evaluations (default: %(default)s)")
    env.add_argument("--val-subset", type=int, default=None, help="evaluate rewards on the first N validation examples")
    env.add_argument("--per-example", action="store_true", help="select teachers per example, not per batch")
    env.add_argument("--warmup-epochs", type=int, default=0,
                     help="train the student alone this long first; episodes start from it (default: %(default)s)")

    agent = train.add_argument_group("selector (REINFORCE, --procedure episodic, except where said)")
    agent.add_argument("--policy-arch", default=None,
                       help="teacher_logistic, logistic or mlp (default: teacher_logistic joint, logistic episodic)")
    agent.add_argument("--policy-options", default="{}", metavar="JSON", help='e.g. \'{"hidden": [32]}\' for mlp')
    agent.add_argument("--baseline", default="leave_one_out",
                       help="leave_one_out, moving_average or none (default: %(default)s)")
    agent.add_argument("--episodes", type=int, default=30, help="policy updates (default: %(default)s)")
    agent.add_argument("--num-envs", type=int, default=8, help="students per episode (default: %(default)s)")
    agent.add_argument("--policy-learning-rate", type=float, default=None, help="(default: 0.1 joint, 0.05 episodic)")
    agent.add_argument("--entropy-coef", type=float, default=0.01, help="(default: %(default)s)")
    agent.add_argument("--discount", type=float, default=1.0, help="of the return-to-go (default: %(default)s)")
    agent.add_argument("--agent-seed", type=int, default=0,
                       help="seed of selector training; joint: selector i has seed agent-seed + i (default: %(default)s)")

    final = train.add_argument_group("final student")
    final.add_argument("--greedy", action="store_true", help="episodic: select greedily (p > 0.5) instead of sampling")
    final.add_argument("--compare", action="append", default=[], metavar="STRATEGY",
                       help="also distil with this strategy (e.g. uniform), for a row to compare; repeatable")
    train.set_defaults(func=run_train)


def _json_object(text: str, flag: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{flag} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object")
    return value


def run_train(args: argparse.Namespace) -> int:
    return PROCEDURES[args.procedure](args)


def _given(args: argparse.Namespace, names) -> dict:
    """The options among `names` that were given on the command line (the rest keep the
    procedure's own defaults)."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _claim_run(args: argparse.Namespace, kind: str, config, student, seeds, interval, **own):
    """Loads the data and the pool, checks --compare, and claims --out for the run's signature (the
    shared options plus the procedure's `own`): (splits, pool, compared, out, checkpoints), with
    checkpoints None when a resumed run had already finished."""
    from envs.sources import load_pool_for
    from mtkd.distill.experiment import build_strategies
    from mtkd.progress import stderr_line
    from mtkd.run_checkpoints import start_run

    splits, pool = load_pool_for(args.dataset, args.teachers, args.data_dir, args.val_fraction, args.split_seed)
    compared = build_strategies(args.compare, pool)  # bad names fail before training
    signature = {"kind": kind, "dataset": args.dataset, "teachers": args.teachers, "student": student.to_dict(),
                 "config": config.__dict__, "seeds": seeds, **own, "compare": args.compare,
                 "val_fraction": args.val_fraction, "split_seed": args.split_seed}
    out, checkpoints = start_run(args.out, signature, overwrite=args.overwrite, resume=args.resume,
                                 config=interval, log=stderr_line)
    return splits, pool, compared, out, checkpoints


def run_joint(args: argparse.Namespace) -> int:
    import agents  # noqa: F401  (registers the `rl` strategy)
    from agents.procedure import run_joint_selector, stderr_line
    from agents.selector_config import SelectorConfig
    from mtkd.distill.experiment import run_strategies, teacher_rows
    from mtkd.distill.results import format_table, write_results

    config = train_config_from(args)
    student = student_spec_from(args)
    seeds = seeds_from(args)
    interval = checkpoint_config_from(args)
    options = _given(args, ("policy_arch", "reward", "apply", "init", "credit_every", "credit_horizon",
                            "evidence_threshold", "evidence_cap", "policy_learning_rate", "policy_optimizer",
                            "norm_decay"))
    options.update(policy_options=_json_object(args.policy_options, "--policy-options"),
                   per_example=bool(args.per_example), agent_seed=args.agent_seed)
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


def run_episodic(args: argparse.Namespace) -> int:
    import agents  # noqa: F401  (registers the `rl` strategy)
    from agents.config import AgentConfig
    from agents.procedure import stderr_line, train_and_save_policy
    from envs.config import EnvConfig
    from mtkd.distill.experiment import build_strategies, run_strategies, teacher_rows
    from mtkd.distill.results import format_table, write_results

    # Every option is validated before any data is loaded or anything is written.
    interval = checkpoint_config_from(args)
    config = train_config_from(args)
    student = student_spec_from(args)
    seeds = seeds_from(args)
    if args.warmup_epochs < 0:
        raise ConfigError(f"--warmup-epochs must be >= 0, got {args.warmup_epochs}")
    env_config = EnvConfig(student=student, train=config.replace(epochs=args.episode_epochs),
                           updates_per_decision=args.updates_per_decision, reward=args.reward or "val_loss_gain",
                           eval_every=args.eval_every, val_subset=args.val_subset, per_example=args.per_example)
    agent_config = AgentConfig(policy=args.policy_arch or "logistic",
                               policy_options=_json_object(args.policy_options, "--policy-options"),
                               baseline=args.baseline, entropy_coef=args.entropy_coef,
                               learning_rate=args.policy_learning_rate or 0.05, num_envs=args.num_envs,
                               num_episodes=args.episodes, discount=args.discount)

    splits, pool, compared, out, checkpoints = _claim_run(
        args, "select", config, student, seeds, interval, env=env_config.to_dict(), agent=agent_config.to_dict(),
        agent_seed=args.agent_seed, warmup_epochs=args.warmup_epochs, greedy=args.greedy)
    if checkpoints is None:
        return 0
    log = stderr_line

    policy_dir, records = train_and_save_policy(
        splits, pool, out, env_config, agent_config, agent_seed=args.agent_seed, warmup_epochs=args.warmup_epochs,
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


PROCEDURES = {"joint": run_joint, "episodic": run_episodic}
