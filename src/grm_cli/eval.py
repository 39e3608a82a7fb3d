"""``grm eval``: evaluate a GRM (or a scalar RM's scores file) on real benchmarks with their official scoring.

Registered in ``grm_cli.app`` as ``app.command("eval")(eval_command)``. Writes ``metrics.json``, ``report.md``,
``params.json``, ``accuracy_vs_k.png`` (headline score vs k, when sampled at two or more k) and
``items_<benchmark>.jsonl`` under ``--output`` and prints one table per benchmark (plus the per-subset table when the
benchmark's items fall into subsets, e.g. a custom JSONL whose items carry ``subset``), then, with two or more
benchmarks, the cross-benchmark table (``grm.benchmarks.table``; also in ``metrics.json`` and MLflow as
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
from grm.benchmarks.report import all_metrics, markdown_table, write_reports
from grm.benchmarks.table import cross_markdown, cross_table
from grm.evaluation import (
    GREEDY_ORDERS,
    METARM,
    OFFICIAL,
    VOTING,
    EvalReport,
    evaluate,
    evaluate_scores,
    model_label,
    read_scores_file,
)
from grm.files import check_name, check_output_dir
from grm.schemas import DataError, Item, read_items
from grm.verdicts import TIE_POLICIES

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

    return make_sampler(model, {}, shard_size)


def eval_command(
    ctx: typer.Context,
    benchmark: Annotated[
        str,
        typer.Option(
            "--benchmark",
            "-b",
            help=f"NAME[,NAME] (local: {', '.join(available('benchmark', local=True))}) or a canonical JSONL path",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(help="model dir, http(s) URL (OpenAI-compatible) or vllm:PATH; not with --scores-file"),
    ] = None,
    k: Annotated[str, typer.Option("--k", help="Voting@k / MetaRM@k sample counts, e.g. 1,8,32")] = "1,8",
    meta_rm: Annotated[Path | None, typer.Option("--meta-rm", help="meta RM dir: adds MetaRM@k")] = None,
    k_meta: Annotated[int | None, typer.Option(help="samples kept by the meta RM (default k/2)")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="at most N items per benchmark, spread over subsets")
    ] = None,
    seed: Annotated[int, typer.Option(help="seeds shuffles, sampling and tie breaks")] = 0,
    temperature: Annotated[float, typer.Option(min=0.0, help="voting temperature (paper: 0.5)")] = 0.5,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 512,
    template: Annotated[str, typer.Option(help="prompt template: deepseek-grm | compact")] = "deepseek-grm",
    tie_policy: Annotated[
        str, typer.Option(help=f"{' | '.join(TIE_POLICIES)} | {OFFICIAL} (the benchmark's own rule)")
    ] = "random",
    greedy_order: Annotated[
        str, typer.Option(help="order the greedy judge sees: shuffled (seeded per item) | original")
    ] = "shuffled",
    hygiene: Annotated[bool, typer.Option(help="run the reversed-order and second-seed checks")] = True,
    scores_file: Annotated[
        Path | None, typer.Option(help='JSONL {"id", "scores": [...]} from a scalar RM, scored instead of a model')
    ] = None,
    model_name: Annotated[str | None, typer.Option(help="name in metric names (default: from --model)")] = None,
    output: Annotated[Path | None, typer.Option(help="report folder (default runs/eval/<model>-<time>)")] = None,
    benchdata: Annotated[
        Path | None,
        typer.Option(
            envvar=BENCHDATA_ENV,
            help="benchdata folder (default: the copy shipped in the repository, docs/benchdata.md; rmb needs a "
            "full copy)",
        ),
    ] = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="log metrics + report to MLflow")] = False,
    executor: Annotated[str, typer.Option(help="local | ray: where the shards are sampled (same results)")] = "local",
    workers: Annotated[int, typer.Option(min=1, help="Ray actors, each holding one sampler (--executor ray)")] = 2,
    ray_address: Annotated[
        str | None, typer.Option(help="unset: a local Ray started here; auto or ray://HEAD:10001: a cluster")
    ] = None,
    shard_size: Annotated[int, typer.Option(min=1, help="prompts per shard (sampling.shard_size)")] = 256,
) -> None:
    """Evaluate a generative RM (greedy, Voting@k, MetaRM@k) or a scalar RM's scores on real benchmarks."""
    ks = parse_ks(k)
    if track:  # checked before the evaluation: a tracking server that is down fails now, not after it
        from tasks.service_checks import preflight

        preflight(("mlflow",))
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
    params: dict[str, Any] = {
        "benchmark": benchmark,
        "model_name": name,
        "limit": limit,
        "seed": seed,
        "tie_policy": tie_policy,
        "benchdata": str(root or ""),
    }
    if scores_file is not None:
        params["scores_file"] = str(scores_file)
    else:
        params.update(
            model=model,
            k=",".join(map(str, ks)),
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            template=template,
            greedy_order=greedy_order,
            hygiene=hygiene,
        )
        if meta_rm is not None:
            params.update(meta_rm=str(meta_rm), k_meta=k_meta if k_meta is not None else "k/2")
    reports: list[EvalReport] = []
    if scores is not None:
        for bench, items, skipped in targets:
            _note_skipped(bench, skipped, params)
            try:
                reports.append(
                    evaluate_scores(
                        items,
                        scores,
                        benchmark=bench,
                        model_name=name,
                        seed=seed,
                        tie_policy=tie_policy,
                        source=str(scores_file),
                    )
                )
            except DataError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from exc
    else:
        meta_scorer = _load_meta_scorer(meta_rm, template) if meta_rm is not None else None
        methods = [VOTING] + ([METARM] if meta_scorer is not None else [])
        with executors.using(_runtime(executor, workers, ray_address)):
            sampler = _build_sampler(model, shard_size)  # type: ignore[arg-type]
            for bench, items, skipped in targets:
                _note_skipped(bench, skipped, params)
                typer.echo(f"evaluating {bench}: {len(items)} items, k={ks}, methods=greedy+{'+'.join(methods)}")
                reports.append(
                    evaluate(
                        items, sampler, benchmark=bench, model_name=name, ks=ks, methods=methods,
                        meta_scorer=meta_scorer, k_meta=k_meta, temperature=temperature,
                        max_new_tokens=max_new_tokens, seed=seed, template=template, tie_policy=tie_policy,
                        greedy_order=greedy_order, hygiene=hygiene,
                    )
                )  # fmt: skip
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
