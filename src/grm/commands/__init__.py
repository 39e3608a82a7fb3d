"""Typer command implementations, registered on the ``grm`` app in ``grm.cli``."""
