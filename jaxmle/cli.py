"""The ``jaxmle`` command. Each subcommand lives in ``jaxmle.commands.<name>`` and provides
``register(subparsers)``, which adds its parser and sets ``func(args) -> exit code``."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("demo", "verify", "simulate", "merge")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxmle", description="Maximum likelihood for any JAX log-density.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"jaxmle.commands.{name}").register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
