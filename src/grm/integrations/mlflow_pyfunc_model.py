"""The GRM as an MLflow pyfunc *model from code* (logged by ``grm.integrations.mlflow.log_grm_model``; only mlflow
loads this file)."""

from __future__ import annotations

import mlflow
from mlflow.pyfunc import PythonModel


class GRMPyfunc(PythonModel):
    """``predict(DataFrame[query, responses], params)`` -> one row per item: scores, votes, best, n_parsed, n_failed,
    method (Voting@k, or MetaRM@k when ``k_meta`` > 0 and a meta RM was logged)."""

    def load_context(self, context):  # no type hints: mlflow would try to infer a signature from them
        from grm.sampling import build_sampler

        config = dict(context.model_config or {})
        artifacts = dict(context.artifacts or {})
        spec = artifacts.get("grm") or config.get("sampler")
        if not spec:
            raise ValueError("the GRM pyfunc has neither a 'grm' artifact nor a 'sampler' in its model_config")
        self.template = config.get("template", "deepseek-grm")
        self.sampler = build_sampler(spec, **{"progress": False, **config.get("sampler_options", {})})
        self.meta = None
        if artifacts.get("meta_rm"):
            from grm.meta_rm import load_meta_scorer

            self.meta = load_meta_scorer(artifacts["meta_rm"])

    def predict(self, context, model_input, params=None):
        import pandas as pd

        from grm.integrations.mlflow import PARAMS
        from grm.serving.scoring import ScoreSettings, make_item, score_alone

        p = {**PARAMS, **(params or {})}
        k_meta = int(p["k_meta"]) or None
        if k_meta is not None and self.meta is None:
            raise ValueError("k_meta > 0 needs a meta RM; this model was logged without one")
        settings = ScoreSettings(
            int(p["k"]), k_meta, float(p["temperature"]), int(p["seed"]), int(p["max_new_tokens"])
        )
        rows = model_input.to_dict("records") if hasattr(model_input, "to_dict") else list(model_input)
        items = [make_item(r["query"], [str(x) for x in r["responses"]]) for r in rows]
        results = score_alone(self.sampler, items, [None] * len(items), settings, self.template, self.meta)
        return pd.DataFrame(
            [
                {
                    "scores": r["scores"],
                    "votes": None if r["votes"] is None else [float(v) for v in r["votes"]],
                    "best": -1 if r["best"] is None else r["best"],
                    "n_parsed": r["n_parsed"],
                    "n_failed": r["parse_failures"]["count"],
                    "method": r["method"],
                }
                for r in results
            ]
        )


mlflow.models.set_model(GRMPyfunc())
