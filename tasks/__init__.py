"""Thin @task wrappers: the I/O, tracking, validation and versioning boundary around the pure ``grm`` core.

Importing this package applies the embedded Prefect defaults (``tasks.prefect_env``) before any submodule imports
``prefect``; variables already set in the environment win.
"""

from tasks import prefect_env

prefect_env.configure_defaults()
