"""Thin @task wrappers: the I/O, tracking, validation and versioning boundary around the pure ``grm`` core.

Importing this package applies the embedded Prefect defaults (``tasks.prefect_env``) before any submodule imports
``prefect``; variables already set in the environment win. It also sets the log levels a run shows
(``prefect_env.configure_logging``).
"""

from tasks import prefect_env

prefect_env.configure_defaults()
prefect_env.configure_logging()
