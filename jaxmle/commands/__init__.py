"""Subcommands of the ``jaxmle`` command line (see ``jaxmle.cli``)."""
