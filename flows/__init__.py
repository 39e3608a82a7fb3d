"""Prefect flows: composition only (``prepare_data``, ``evaluate``, ``spct_pipeline``); logic lives in tasks/."""

from tasks import prefect_env

prefect_env.configure_defaults()
