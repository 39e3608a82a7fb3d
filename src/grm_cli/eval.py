"""``grm eval``: evaluate a GRM (or a scalar RM's scores file) on real benchmarks with their official scoring.

Registered in ``grm_cli.app`` as ``app.command("eval")(eval_command)``. Writes ``metrics.json``, ``report.md``,
``params.json``, ``accuracy_vs_k.png`` (headline score vs k, when sampled at two or more k) and
``items_<benchmark>.jsonl`` under ``--output`` and prints one table per benchmark (plus the per-subset table when the
benchmark's items fall into subsets, e.g. a custom JSONL whose items carry ``subset``), then, with two or more
benchmarks, the cross-benchmark table (``grm.eval.report.cross_table``; also in ``metrics.json`` and MLflow as
``eval/table/{model}/{cell}/{benchmark}``).
With ``--scores-file`` the sampling options (``GENERATIVE_OPTIONS``) are rejected when given and left out of the
parameters: a scalar RM's scores are not sampled.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from grm import executors
from grm.benchmarks import available, get_benchmark, load_benchmark, resolve_benchdata
from grm.benchmarks.registry import BENCHDATA_ENV
from grm.eval.metric_key import METARM, VOTING, model_label
from grm.eval.report.benchmark import all_metrics, markdown_table, write_reports
from grm.eval.report.cross_table import cross_markdown, cross_table
from grm.eval.run import evaluate, evaluate_scores
from grm.eval.scores_file import read_scores_file
from grm.eval.spec import GREEDY_ORDERS, OFFICIAL, EvalReport, EvalSpec
from grm.files import check_name, check_output_dir
from grm.method.verdicts import TIE_POLICIES
from grm.schemas import DataError, Item, read_items

log = logging.getLogger(__name__)

# options that only mean something when a GRM is sampled (--model); parameter name -> flag
GENERATIVE_OPTIONS = {
    "k": "--k",
    "meta_rm": "--meta-rm",
    "k_meta": "--k-meta",
    "temperature": "--temperature",
    "max_new_tokens": "--max-new-tokens",
    "template": "--template",
    "greedy_order": "--greedy-order",
    "hygiene": "--hygiene/--no-hygiene",
    "executor": "--executor",
    "workers": "--workers",
    "ray_address": "--ray-address",
    "shard_size": "--shard-size",
}


def parse_ks(text: str) -> list[int]:
    """``"1,8,32"`` -> ``[1, 8, 32]``; raises ``typer.BadParameter`` naming the bad part."""
    ks = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise typer.BadParameter(f"{part!r} is not a positive integer; use e.g. --k 1,8,32", param_hint="--k")
        ks.append(int(part))
    return sorted(set(ks))


def load_targets(spec: str, benchdata: Path | None, limit: int | None) -> list[tuple[str, list[Item], list[str]]]:
    """Resolve ``--benchmark``: registered names and/or paths to canonical JSONL, comma-separated. A file is named
    by its stem, so ``rewardbench2.jsonl`` (items written from ``load_hub``) gets RewardBench 2's scoring.

    Returns:
        ``(name, items, skipped bad rows)`` per benchmark.
    """
    out = []
    for name in [p.strip() for p in spec.split(",") if p.strip()]:
        path = Path(name)
        if path.suffix == ".jsonl" or path.is_file():
            items = read_items(path)
            out.append((path.stem, items[:limit] if limit else items, []))
            continue
        spec = get_benchmark(name)  # raises "Unknown benchmark ..." with the list
        if spec.local_shards is None:
            raise typer.BadParameter(
                f"{name} has no local copy (hub only: {', '.join(h.path for h in spec.hub)}). On a machine with hub "
                f"access write it once with grm.schemas.write_items('{name}.jsonl', grm.benchmarks.load_hub('{name}')) "
                f"and pass that file: a file named after a registered benchmark is scored as that benchmark",
                param_hint="--benchmark",
            )
        skipped: list[str] = []
        out.append((name, load_benchmark(name, benchdata, limit=limit, skipped=skipped), skipped))
    if not out:
        raise typer.BadParameter("no benchmark given", param_hint="--benchmark")
    return out


def _load_meta_scorer(meta_rm: Path, template: str) -> Any:
    from grm.meta_rm import load_meta_scorer

    try:
        return load_meta_scorer(meta_rm, template=template)  # its trained max_length and template
    except ValueError as exc:  # a meta RM of another template, or an unreadable meta_rm.json
        raise typer.BadParameter(str(exc), param_hint="--meta-rm") from exc


def _build_sampler(model: str, shard_size: int) -> Any:
    """The model's sampler, sampled in fixed shards on the current executor (``grm.executors``): the same
    judgements with ``--executor local`` and ``ray``, and the same as the pipeline's eval stage."""
    from grm.executors import make_sampler
    from grm_cli.models import resolve_model

    return make_sampler(resolve_model(model).model, {}, shard_size)  # champion/models:/N@A: the registry's folder


BenchmarkOpt = Annotated[
    str,
    typer.Option(
        "--benchmark",
        "-b",
        help=f"NAME[,NAME] (local: {', '.join(available('benchmark', local=True))}) or a canonical JSONL path",
    ),
]
ModelOpt = Annotated[
    str | None, typer.Option(help="model dir, http(s) URL (OpenAI-compatible) or vllm:PATH; not with --scores-file")
]
KOpt = Annotated[str, typer.Option("--k", help="Voting@k / MetaRM@k sample counts, e.g. 1,8,32")]
MetaRMOpt = Annotated[Path | None, typer.Option("--meta-rm", help="meta RM dir: adds MetaRM@k")]
KMetaOpt = Annotated[int | None, typer.Option(help="samples kept by the meta RM (default k/2)")]
LimitOpt = Annotated[int | None, typer.Option(min=1, help="at most N items per benchmark, spread over subsets")]
SeedOpt = Annotated[int, typer.Option(help="seeds shuffles, sampling and tie breaks")]
TemperatureOpt = Annotated[float, typer.Option(min=0.0, help="voting temperature (paper: 0.5)")]
MaxNewTokensOpt = Annotated[int, typer.Option(min=1)]
TemplateOpt = Annotated[str, typer.Option(help="prompt template: deepseek-grm | compact")]
TiePolicyOpt = Annotated[str, typer.Option(help=f"{' | '.join(TIE_POLICIES)} | {OFFICIAL} (the benchmark's own rule)")]
GreedyOrderOpt = Annotated[
    str, typer.Option(help="order the greedy judge sees: shuffled (seeded per item) | original")
]
HygieneOpt = Annotated[bool, typer.Option(help="run the reversed-order and second-seed checks")]
ScoresFileOpt = Annotated[
    Path | None, typer.Option(help='JSONL {"id", "scores": [...]} from a scalar RM, scored instead of a model')
]
ModelNameOpt = Annotated[str | None, typer.Option(help="name in metric names (default: from --model)")]
OutputOpt = Annotated[Path | None, typer.Option(help="report folder (default runs/eval/<model>-<time>)")]
BenchdataOpt = Annotated[
    Path | None,
    typer.Option(
        envvar=BENCHDATA_ENV,
        help="benchdata folder (default: the copy shipped in the repository, docs/benchdata.md; rmb needs a full copy)",
    ),
]
TrackOpt = Annotated[bool, typer.Option("--track/--no-track", help="log metrics + report to MLflow")]
ExecutorOpt = Annotated[str, typer.Option(help="local | ray: where the shards are sampled (same results)")]
WorkersOpt = Annotated[int, typer.Option(min=1, help="Ray actors, each holding one sampler (--executor ray)")]
RayAddressOpt = Annotated[
    str | None, typer.Option(help="unset: a local Ray started here; auto or ray://HEAD:10001: a cluster")
]
ShardSizeOpt = Annotated[int, typer.Option(min=1, help="prompts per shard (sampling.shard_size)")]


def eval_command(
    ctx: typer.Context,
    benchmark: BenchmarkOpt,
    model: ModelOpt = None,
    k: KOpt = "1,8",
    meta_rm: MetaRMOpt = None,
    k_meta: KMetaOpt = None,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    temperature: TemperatureOpt = 0.5,
    max_new_tokens: MaxNewTokensOpt = 512,
    template: TemplateOpt = "deepseek-grm",
    tie_policy: TiePolicyOpt = "random",
    greedy_order: GreedyOrderOpt = "shuffled",
    hygiene: HygieneOpt = True,
    scores_file: ScoresFileOpt = None,
    model_name: ModelNameOpt = None,
    output: OutputOpt = None,
    benchdata: BenchdataOpt = None,
    track: TrackOpt = False,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 2,
    ray_address: RayAddressOpt = None,
    shard_size: ShardSizeOpt = 256,
) -> None:
    """Evaluate a generative RM (greedy, Voting@k, MetaRM@k) or a scalar RM's scores on real benchmarks."""
    ks = parse_ks(k)
    if track:  # checked before the evaluation: a tracking server that is down fails now, not after it
        from tasks.service_checks import preflight

        preflight(("mlflow",))
    _check_options(ctx, model, scores_file, tie_policy, greedy_order, temperature, ks, k_meta, meta_rm)
    try:
        root = resolve_benchdata(benchdata) if _needs_benchdata(benchmark) else None
        targets = load_targets(benchmark, root, limit)
        scores = read_scores_file(scores_file) if scores_file is not None else None
    except (DataError, FileNotFoundError, KeyError) as exc:
        typer.echo(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", err=True)
        raise typer.Exit(2) from exc
    if model_name is not None:
        check_name(model_name, "--model-name")
    name = model_name or (model_label(model) if model else model_label(str(scores_file).removesuffix(".jsonl")))
    out_dir = output or Path("runs") / "eval" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_output_dir(out_dir)  # an output path that is a file is refused before any sampling
    # the benchmark is filled in per target; every other setting is stated once, here
    spec = EvalSpec(
        benchmark="-", model_name=name, ks=tuple(ks), k_meta=k_meta, temperature=temperature,
        max_new_tokens=max_new_tokens, seed=seed, template=template, tie_policy=tie_policy,
        greedy_order=greedy_order, hygiene=hygiene,
    )  # fmt: skip
    params = _params(spec, benchmark, limit, str(root or ""), model, scores_file, meta_rm)
    if scores is not None:
        reports = _score_targets(targets, scores, spec, str(scores_file), params)
    else:
        meta_scorer = _load_meta_scorer(meta_rm, template) if meta_rm is not None else None
        with executors.using(_runtime(executor, workers, ray_address)):
            sampler = _build_sampler(model, shard_size)  # type: ignore[arg-type]
            reports = _evaluate_targets(targets, sampler, spec, meta_scorer, params)
    _finish(reports, out_dir, params, track)


def _check_options(
    ctx: typer.Context,
    model: str | None,
    scores_file: Path | None,
    tie_policy: str,
    greedy_order: str,
    temperature: float,
    ks: list[int],
    k_meta: int | None,
    meta_rm: Path | None,
) -> None:
    """Refuse bad option values and combinations before anything is loaded (``typer.BadParameter``: exit 2)."""
    if tie_policy not in (*TIE_POLICIES, OFFICIAL):
        raise typer.BadParameter(
            f"{tie_policy!r}; choose {', '.join((*TIE_POLICIES, OFFICIAL))}", param_hint="--tie-policy"
        )
    if greedy_order not in GREEDY_ORDERS:
        raise typer.BadParameter(f"{greedy_order!r}; choose {', '.join(GREEDY_ORDERS)}", param_hint="--greedy-order")
    if scores_file is None:
        from grm_cli.app import check_sampling_options

        check_sampling_options(temperature=temperature, k=max(ks), k_meta=k_meta, meta_rm=meta_rm, k_flag="max --k")
    if (model is None) == (scores_file is None):
        raise typer.BadParameter("give exactly one of --model (a GRM to sample) or --scores-file (scalar RM scores)")
    if scores_file is not None:
        given = [flag for name, flag in GENERATIVE_OPTIONS.items() if _given(ctx, name)]
        if given:
            one = len(given) == 1
            raise typer.BadParameter(
                f"{', '.join(given)} {'is' if one else 'are'} for sampling a GRM with --model only; remove "
                f"{'it' if one else 'them'} (a --scores-file is scored as it is)",
                param_hint="--scores-file",
            )


def _params(
    spec: EvalSpec,
    benchmark: str,
    limit: int | None,
    benchdata: str,
    model: str | None,
    scores_file: Path | None,
    meta_rm: Path | None,
) -> dict[str, Any]:
    """The run's parameters as written to ``params.json`` (and MLflow): the sampling ones only for a GRM."""
    params: dict[str, Any] = {
        "benchmark": benchmark,
        "model_name": spec.model_name,
        "limit": limit,
        "seed": spec.seed,
        "tie_policy": spec.tie_policy,
        "benchdata": benchdata,
    }
    if scores_file is not None:
        params["scores_file"] = str(scores_file)
        return params
    params.update(
        model=model,
        k=",".join(map(str, spec.ks)),
        temperature=spec.temperature,
        max_new_tokens=spec.max_new_tokens,
        template=spec.template,
        greedy_order=spec.greedy_order,
        hygiene=spec.hygiene,
    )
    if meta_rm is not None:
        params.update(meta_rm=str(meta_rm), k_meta=spec.k_meta if spec.k_meta is not None else "k/2")
    return params


def _score_targets(
    targets: list[tuple[str, list[Item], list[str]]],
    scores: dict[str, list[float]],
    spec: EvalSpec,
    source: str,
    params: dict[str, Any],
) -> list[EvalReport]:
    reports = []
    for bench, items, skipped in targets:
        _note_skipped(bench, skipped, params)
        try:
            reports.append(evaluate_scores(items, scores, spec.replace(benchmark=bench), source=source))
        except DataError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
    return reports


def _evaluate_targets(
    targets: list[tuple[str, list[Item], list[str]]],
    sampler: Any,
    spec: EvalSpec,
    meta_scorer: Any,
    params: dict[str, Any],
) -> list[EvalReport]:
    spec = spec.replace(methods=(VOTING, METARM) if meta_scorer is not None else (VOTING,))
    reports = []
    for bench, items, skipped in targets:
        _note_skipped(bench, skipped, params)
        typer.echo(
            f"evaluating {bench}: {len(items)} items, k={list(spec.ks)}, methods=greedy+{'+'.join(spec.methods)}"
        )
        reports.append(evaluate(items, sampler, spec.replace(benchmark=bench), meta_scorer))
    return reports


def _finish(reports: list[EvalReport], out_dir: Path, params: dict[str, Any], track: bool) -> None:
    """Write the reports, print the tables, and log to MLflow when ``track``."""
    paths = write_reports(reports, out_dir, params=params)
    for report in reports:
        typer.echo(markdown_table(report))
    if len(reports) >= 2:
        typer.echo(cross_markdown(cross_table(reports)))
    typer.echo(
        f"wrote {paths['metrics']} and {paths['report']}" + (f" and {paths['plot']}" if "plot" in paths else "")
    )
    if track:
        from tasks.eval_tracking import log_eval_report

        run_id = log_eval_report(out_dir, all_metrics(reports), params)  # the report folder (PNG too) as artifacts
        typer.echo(f"logged to MLflow run {run_id}")


def _runtime(executor: str, workers: int, ray_address: str | None) -> Any:
    from grm.config import RuntimeConfig

    try:
        return RuntimeConfig(executor=executor, workers=workers, ray_address=ray_address)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--executor") from exc


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was set on the command line or from the environment (not left at its default)."""
    source = ctx.get_parameter_source(name)  # by name: typer's click and the installed click differ in enum values
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _needs_benchdata(spec: str) -> bool:
    return any(not (p.strip().endswith(".jsonl") or Path(p.strip()).is_file()) for p in spec.split(",") if p.strip())


def _note_skipped(bench: str, skipped: list[str], params: dict[str, Any]) -> None:
    if skipped:
        typer.echo(f"warning: {bench}: skipped {len(skipped)} bad source row(s), e.g. {skipped[0]}", err=True)
        params[f"skipped_rows/{bench}"] = len(skipped)
