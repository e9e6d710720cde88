"""``jaxmle simulate``: a simulation study of a built-in model from the command line."""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np


def register(sub) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate datasets from a built-in model, fit them all, and print bias, SD, SE, RMSE, coverage",
        description="Simulate REPS datasets of size N from a built-in model at the true values given (else at\n"
        "the model's default truth, listed below), fit each, and print bias, SD, mean SE, RMSE,\n"
        "coverage of the 95% Wald interval and Cramér–Rao efficiency.",
        epilog=_truth_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="a built-in model, e.g. poisson or gaussian (the name of a jm.models factory)")
    p.add_argument("--n", type=int, required=True, help="observations per dataset")
    p.add_argument("--reps", type=int, required=True, help="number of datasets")
    p.add_argument(
        "--truth",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="true value of every parameter, e.g. rate=3, or beta=0.5,1,-1 for a vector (default: the model's "
        "default truth)",
    )
    p.add_argument(
        "--model-arg",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="arguments of the model's factory, e.g. trials=10 for binomial or k=4 for categorical",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk-size", type=int, default=None, help="replicates per chunk (bounds memory)")
    p.add_argument("--checkpoint", default=None, metavar="PATH", help="directory for resumable checkpoints")
    p.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="i/K",
        help="run only part i of K of the replicates into --checkpoint (e.g. $SLURM_ARRAY_TASK_ID/10), then "
        "assemble the study with jaxmle merge",
    )
    p.add_argument("--out", default=None, metavar="DIR", help="write estimates.csv and study.png here")
    p.set_defaults(func=run)


def _shard(text: str) -> tuple[int, int]:
    """``--shard i/K`` as ``(i, K)``; argparse names the option in the error."""
    from jaxmle.shards import parse_shard

    try:
        return parse_shard(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run(args) -> int:
    import jaxmle as jm

    try:
        if args.shard is not None and (args.checkpoint is None or args.out is not None):
            raise ValueError(
                "--shard needs --checkpoint DIR, the directory all shards share (and no --out: "
                "jaxmle merge DIR --out writes the whole study)"
            )
        model = _model(args.model, _factory_args(args.model_arg))
        truth = _truth(args.truth) if args.truth else _default_truth(model)
        out = output_dir(args.out)
        study = jm.simulation_study(
            model,
            truth,
            args.n,
            args.reps,
            seed=args.seed,
            chunk_size=args.chunk_size,
            checkpoint=args.checkpoint,
            shard=args.shard,
        )
    except ValueError as err:
        print(f"jaxmle simulate: error: {err}", file=sys.stderr)
        return 2
    if args.shard is not None:
        print(f"shard {args.shard[0]} of {args.shard[1]} is done; the study so far:\n{study}")
        if study.complete:
            print(f"every shard is done: jaxmle merge {args.checkpoint} prints the study")
        return 0
    report(study, out, "simulate")
    return 0


def report(study, out: Path | None, command: str) -> None:
    """Print the study's summary; with ``out``, write its estimates.csv and study.png there."""
    print(study.summary())
    if out is None:
        return
    write_estimates(study.fits, out / "estimates.csv")
    try:
        study.plot(out / "study.png")
    except ImportError as err:
        print(f"jaxmle {command}: no plot: {err}", file=sys.stderr)
    print(f"wrote {out / 'estimates.csv'}" + (f" and {out / 'study.png'}" if (out / "study.png").exists() else ""))


def output_dir(path) -> Path | None:
    """``--out`` as a writable directory (created if missing), checked before any fitting so
    that an unusable one cannot lose a study's estimates; ValueError saying why otherwise."""
    if path is None:
        return None
    out = Path(path)
    if not path or (out.exists() and not out.is_dir()):
        raise ValueError(f"--out: {path!r} is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise ValueError(f"--out: cannot write to {path!r} ({err.strerror or err})") from None
    return out


def _factory_args(items: list[str]) -> dict:
    """``["trials=10"]`` -> ``{"trials": 10}`` (integers stay integers)."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--model-arg: expected NAME=VALUE, got {item!r}")
        try:
            out[name] = int(value)
        except ValueError:
            try:
                out[name] = float(value)
            except ValueError:
                raise ValueError(f"--model-arg: {name} must be a number, got {value!r}") from None
    return out


def _model(name: str, factory_args: dict):
    from jaxmle import models

    available = sorted(models.DEFAULT_TRUTHS)  # the factory functions
    if name not in available:
        raise ValueError(f"model: unknown model {name!r} (available: {', '.join(available)})")
    factory = getattr(models, name)
    try:
        model = factory(**factory_args)
    except TypeError as err:
        raise ValueError(f"model: {name!r} needs its factory's arguments as --model-arg NAME=VALUE ({err})") from None
    return model


def _truth(pairs: list[str]) -> dict:
    truth = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--truth: expected NAME=VALUE, got {pair!r}")
        try:
            numbers = [float(v) for v in value.split(",")]
        except ValueError:
            raise ValueError(f"--truth: {name}: {value!r} is not a number or a comma-separated list") from None
        truth[name] = numbers[0] if len(numbers) == 1 and "," not in value else np.asarray(numbers)
    return truth


def _default_truth(model) -> dict:
    """The model's default truth, announced on stdout so the table's truth column is explained."""
    from jaxmle import models

    truth = models.default_truth(model)
    print(f"no --truth given: simulating at {model.name}'s default truth {_format_truth(truth)}")
    return truth


def _format_truth(truth: dict) -> str:
    """``rate=3`` / ``beta=0.5,1,-1``, as ``--truth`` takes it."""
    return " ".join(f"{k}={','.join(f'{v:g}' for v in np.ravel(value))}" for k, value in truth.items())


def _truth_table() -> str:
    """The epilog of ``--help``: each model's default truth."""
    from jaxmle import models

    width = max(map(len, models.DEFAULT_TRUTHS))
    rows = [
        f"  {name:<{width}}  {_format_truth(truth) if truth else 'p=1/k,...,1/k (uniform over the k labels)'}"
        for name, truth in models.DEFAULT_TRUTHS.items()
    ]
    return "default truth of each model (used without --truth):\n" + "\n".join(rows)


def write_estimates(fits, path) -> None:
    """One row per replicate: the estimates, their SEs and the fit's status."""
    from jaxmle.status import Status

    names = {int(s): s.name for s in Status}
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["replicate", *fits.names, *(f"se_{n}" for n in fits.names), "status"])
        for i, (est, se, code) in enumerate(zip(fits.estimates, fits.standard_errors, fits.status, strict=True)):
            out.writerow([i, *map(repr, est.tolist()), *map(repr, se.tolist()), names[int(code)]])
