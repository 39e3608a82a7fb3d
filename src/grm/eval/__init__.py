"""Evaluation of a GRM (or a scalar RM's scores): one shape for every benchmark and every caller.

- ``spec.EvalSpec``: every setting of one evaluation, frozen and passed whole.
- ``run.evaluate`` / ``run.evaluate_scores``: the entry points; they look the benchmark's protocol up in the
  registry ``protocols.PROTOCOLS`` (``standard``, ``two_game``, ``style_matrix``).
- ``metric_key.MetricKey`` / ``metric_key.Cell``: the only place a metric name is built or parsed.
- ``expected.expected_metrics``: the metric names an ``EvalSpec`` will produce, without evaluating.
- ``metrics``: accuracy with a bootstrap interval, paired gaps.
"""
