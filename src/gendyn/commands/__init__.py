"""Subcommand plug-ins of the ``gendyn`` CLI.

Every module in this package defines ``register(subparsers)``, which adds one top-level
subcommand (e.g. ``gendyn lc ...``) whose handlers set ``func``. :func:`gendyn.cli.main`
discovers them, so a measure adds its stages without editing ``gendyn.cli``. Keep the
imports at module level light (import torch and friends inside the handlers): every
``gendyn`` invocation imports these modules.
"""
