"""Adapters that let other frameworks use a running ``grm serve`` (over HTTP, through ``grm.serving.client``).

- ``grm.integrations.verl``: ``compute_score`` / ``compute_score_async`` for verl's ``custom_reward_function``.
- ``grm.integrations.openrlhf_reward_func``: a ``reward_func`` file for OpenRLHF's ``--remote_rm_url file.py``.
- ``grm.integrations.mlflow``: a ``mlflow.genai`` scorer and the GRM as an MLflow pyfunc model.
- ``grm.integrations.trl``: ``grm_reward(url_or_model)``, a TRL reward function (remote or in process).

They live in the installed package (frameworks load them by module or by file path) but outside the pure core:
nothing in ``grm`` imports ``grm.integrations``, and only ``grm/integrations/mlflow.py`` may import mlflow (lazily,
a per-file exception to the layering rule). TRL takes ``grm.integrations.trl.grm_reward("http://...")``
(or ``GRMReward(model)`` in process).
"""
