"""The team stack on one host: PostgreSQL, an S3 object store (SeaweedFS), an MLflow tracking server, a Prefect
server and a process worker, started by ``grm team up`` (docs/team.md).

One module per job: ``processes`` (pid files, logs, free ports, waiting), ``postgres``, ``objectstore``,
``mlflow_server``, ``prefect_server`` (each: the command line and the environment of one service, and how to tell
it is up), ``stack`` (the state folder, ``up``/``down``/``status``) and ``project`` (a project's settings for a
stack: ``.grm/services.env`` and its DVC remote).
"""
