"""What a user compares: the parent run's name, description, results artifacts and UI links; Prefect artifacts.

- Name: the keys the run's overrides changed (``rl.beta=0.02``; ``grm.run_label``), else the config's name; `` #2``
  etc. when the experiment already has a run of that name. The whole diff is the tag ``grm.config_diff``.
- Results (``publish_results``): the markdown ``grm run`` prints (``grm.eval.report.results.results_report``) becomes the parent
  run's Description (tag ``mlflow.note.content``), ``results.md`` and ``results.html``; the results table's cells are
  logged again as ``accuracy/{model}/{cell}``, which MLflow's compare page (alphabetical) lists first. The flow run
  gets a Prefect markdown artifact ``grm-results`` (the same text, the MLflow links, and which stages were reused).
- Links (``run_links``): the experiment's runs table, this run, and the compare page of this run and the previous
  run of the same flow, in the UI of the tracking server (``http(s)://`` URIs) or of ``grm ui`` (127.0.0.1:5000).
  ``link_flow_run`` gives the Prefect flow run a link artifact ``grm-mlflow-run`` to its MLflow run.

Prefect artifacts are written only inside a flow run, and a Prefect API error there is logged, never fatal: the run's
results are already in MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from grm.config import PipelineConfig, flatten
from grm.eval.report import results as report
from grm.plan import load_pipeline
from grm.run_label import config_diff, diff_text, run_label
from tasks.engine.logs import logger

UI_BASE = "http://127.0.0.1:5000"  # `grm ui` / `make mlflow-ui`
DIFF_TAG, NOTE_TAG = "grm.config_diff", "mlflow.note.content"
RESULTS_KEY, LINK_KEY = "grm-results", "grm-mlflow-run"  # Prefect artifact keys: lowercase, digits, dashes


def run_diff(cfg: PipelineConfig, config_path: str | None) -> dict[str, Any]:
    """What the overrides changed: the resolved config against ``config_path`` alone (defaults when None); the
    ``name`` key is left out (it names the run when nothing else changed)."""
    base = load_pipeline([config_path] if config_path else [], [])
    diff = config_diff(flatten(base), flatten(cfg))
    diff.pop("name", None)
    return diff


def unique_name(tracker: Any, label: str) -> str:
    """``label``, or ``label #N`` with the smallest N >= 2 no run of the experiment has (MLflow allows duplicates;
    two runs started at the same instant may still get one name: ids stay unique)."""
    if not tracker.enabled:
        return label
    prefix = label.split("'")[0].split("%")[0]  # a LIKE pattern cannot hold these; the exact test is below
    runs = tracker.client().search_runs(
        [tracker.experiment_id()], f"attributes.run_name LIKE '{prefix}%'", max_results=1000
    )
    taken = {r.info.run_name for r in runs}
    if label not in taken:
        return label
    n = 2
    while f"{label} #{n}" in taken:
        n += 1
    return f"{label} #{n}"


def named_diff(diff: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """The part of ``diff`` the overrides name, in their order (``seed=3`` changes every stage seed left null: the
    name says ``seed=3``, the ``grm.config_diff`` tag lists them all); ``diff`` itself when they name none of it."""
    from grm.config import parse_override

    out: dict[str, Any] = {}
    for text in overrides:
        path = ".".join(parse_override(text)[0])
        out |= {k: v for k, v in diff.items() if k == path or k.startswith(path + ".")}
    return out or dict(diff)


def parent_run_name(
    tracker: Any, cfg: PipelineConfig, config_path: str | None, overrides: Sequence[str] = ()
) -> tuple[str, dict[str, str]]:
    """The parent run's name and the tag that explains it (``grm.config_diff``: every resolved key that differs)."""
    diff = run_diff(cfg, config_path)
    label = run_label(named_diff(diff, overrides), cfg.name)
    return unique_name(tracker, label), {DIFF_TAG: diff_text(diff) or "(none)"}


# ---- links ---------------------------------------------------------------------------------------------------------
def ui_base(tracker: Any) -> str:
    """The MLflow UI serving ``tracker``'s store: the server itself, or ``grm ui`` for an embedded store."""
    return tracker.uri.rstrip("/") if tracker.uri.startswith(("http://", "https://")) else UI_BASE


def previous_run(tracker: Any, run_id: str, flow: str) -> str | None:
    """The parent run of ``flow`` started last before ``run_id`` in the same experiment (None: it is the first)."""
    client = tracker.client()
    runs = client.search_runs(
        [tracker.experiment_id()],
        f"tags.`grm.flow` = '{flow}'",
        order_by=["attributes.start_time DESC"],
        max_results=50,
    )
    this = client.get_run(run_id).info.start_time
    earlier = [r for r in runs if r.info.run_id != run_id and r.info.start_time <= this]
    return earlier[0].info.run_id if earlier else None


def run_links(tracker: Any, run_id: str, flow: str = "spct_pipeline") -> dict[str, str]:
    """``runs`` (the experiment's runs table), ``run`` and, when there is an earlier run, ``compare`` (it and this
    run side by side) plus ``previous`` (its id). Empty when tracking is off."""
    if not tracker.enabled or not run_id:
        return {}
    base = ui_base(tracker)
    links = {"runs": tracker.ui_url(base), "run": tracker.ui_url(base, [run_id])}
    prev = previous_run(tracker, run_id, flow)
    if prev is not None:
        links |= {"compare": tracker.ui_url(base, [prev, run_id]), "previous": prev}
    return links


def how_to_open(tracker: Any) -> str:
    """One line: what serves the links."""
    if tracker.uri.startswith(("http://", "https://")):
        return f"the links open the tracking server {tracker.uri}"
    return f"open with `grm ui` (or `make mlflow-ui`) running in the project folder: the UI at {UI_BASE}"


def links_markdown(links: Mapping[str, str], how: str) -> str:
    """The links as a markdown list (Prefect artifact, run description)."""
    lines = [f"- [runs table]({links['runs']})", f"- [this run]({links['run']})"]
    if "compare" in links:
        lines.append(f"- [compare with the previous run]({links['compare']}) ({links['previous']})")
    return "\n".join([*lines, f"- {how}"])


# ---- Prefect -------------------------------------------------------------------------------------------------------
def _in_flow_run() -> bool:
    try:
        from prefect.context import FlowRunContext

        return FlowRunContext.get() is not None
    except ImportError:  # pragma: no cover - prefect is a dependency
        return False


def _prefect(create: Any, **kwargs: Any) -> bool:
    """Create a Prefect artifact in the current flow run; False (logged) when there is none or the API fails."""

    if not _in_flow_run():
        return False
    try:
        create(**kwargs)
    except Exception as exc:  # the results are in MLflow already; a Prefect API hiccup must not fail the run
        logger().warning("Prefect artifact %s not created: %s: %s", kwargs.get("key"), type(exc).__name__, exc)
        return False
    return True


def link_flow_run(tracker: Any, run_id: str, run_name: str) -> bool:
    """A Prefect link artifact ``grm-mlflow-run`` from the current flow run to MLflow run ``run_id``."""
    if not tracker.enabled or not run_id or not _in_flow_run():
        return False
    from prefect.artifacts import create_link_artifact

    return _prefect(
        create_link_artifact,
        link=tracker.ui_url(ui_base(tracker), [run_id]),
        link_text=f"MLflow run {run_name} ({run_id[:8]})",
        key=LINK_KEY,
        description=f"The MLflow run of this flow run ({how_to_open(tracker)}).",
    )


def stages_markdown(stages: Sequence[Any]) -> str:
    """A table of the run's stages (``StageResult``s): computed here or reused from an earlier run, with the key."""
    lines = ["| stage | this run | build time (s) | key |", "|---|---|---|---|"]
    for s in stages:
        how = "reused (Cached)" if s.cached else "computed"
        lines.append(f"| {s.stage} | {how} | {s.seconds:.1f} | `{s.key[:12]}` |")
    reused = sum(1 for s in stages if s.cached)
    return "\n".join([f"{reused} of {len(stages)} stages reused from earlier runs:", "", *lines])


# ---- results -------------------------------------------------------------------------------------------------------
def publish_results(
    ctx: Any,
    metrics: Mapping[str, float],
    gaps: str | None = None,
    stages: Sequence[Any] = (),
    decision: Mapping[str, Any] | None = None,
    models: Sequence[str] = report.MODELS,
) -> str:
    """Give the parent run and the Prefect flow run the results ``grm run`` prints (see the module docstring).

    Args:
        ctx: the flow run's ``RunContext``.
        metrics: the run's flat metrics.
        gaps: ``gaps_table`` markdown.
        stages: the run's ``StageResult``s (None entries skipped), for the Prefect artifact's reuse table.
        decision: the registry gate's record.
        models: the results table's rows.

    Returns:
        The results markdown.
    """
    from grm.eval.metric_key import heldout_benchmark

    text = report.results_report(metrics, ctx.cfg, gaps, models)
    if decision:
        text += (
            f"\n\nregistry: {decision['model']} v{decision['version']} -> {decision['alias']} ({decision['reason']})"
        )
    tracker, parent = ctx.tracker, ctx.parent_run_id
    links = run_links(tracker, parent, ctx.flow)
    if tracker.enabled and parent:
        tracker.log_text(parent, text + "\n", "results.md")
        tracker.log_text(parent, report.report_html(text, f"{ctx.run_name}: results"), "results.html")
        tracker.log_metrics(
            parent, report.headline_metrics(metrics, heldout_benchmark(ctx.cfg.data.source), ctx.cfg.eval.ks, models)
        )
        files = "`results.md`, `results.html`" + (", `eval/gaps.md`" if gaps else "")
        tracker.set_tags(parent, {NOTE_TAG: f"{text}\n\nFiles: {files}."})
    from prefect.artifacts import create_markdown_artifact

    parts = [f"# {ctx.flow}: {ctx.run_name or ctx.cfg.name}", "", text]
    if links:
        parts += ["", "## MLflow", "", links_markdown(links, how_to_open(tracker))]
    done = [s for s in stages if s is not None]
    if done:
        parts += ["", "## Stages", "", stages_markdown(done)]
    _prefect(
        create_markdown_artifact,
        markdown="\n".join(parts),
        key=RESULTS_KEY,
        description=f"Results of {ctx.flow} run {ctx.run_name or ctx.cfg.name} (config {ctx.cfg.name})",
    )
    return text
