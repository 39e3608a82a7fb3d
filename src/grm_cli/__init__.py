"""The ``grm`` command line: the application layer over the pure core (``grm``), the tasks and the flows.

``grm_cli.app`` holds the Typer app; each other module is one command. The core package ``grm`` never imports this
package, ``tasks`` or ``flows`` (ruff TID251 bans it).
"""
