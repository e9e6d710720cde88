"""``jaxmle merge``: the study that the shards of ``jaxmle simulate --shard`` stored in one directory."""

from __future__ import annotations

import sys

from .simulate import output_dir, report


def register(sub) -> None:
    p = sub.add_parser(
        "merge",
        help="assemble the shards of jaxmle simulate --shard i/K and print the study",
        description="Assemble the study that jaxmle simulate --shard i/K (every i) stored in DIR, and print it as\n"
        "jaxmle simulate does. Exits with status 1, naming them, if replicates are missing or parts\n"
        "cannot be used (with --progress, prints how far each shard has got instead).",
    )
    p.add_argument("checkpoint", metavar="DIR", help="the --checkpoint directory of the shards")
    p.add_argument("--progress", action="store_true", help="print how far the run has got (it may be in flight)")
    p.add_argument("--out", default=None, metavar="DIR", help="write estimates.csv and study.png here")
    p.set_defaults(func=run)


def run(args) -> int:
    import jaxmle as jm

    try:
        if args.progress:
            print(jm.study_progress(args.checkpoint))
            return 0
        out = output_dir(args.out)
        study = jm.load_study(args.checkpoint)
    except ValueError as err:
        print(f"jaxmle merge: error: {err}", file=sys.stderr)
        return 1
    report(study, out, "merge")
    return 0
