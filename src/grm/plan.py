"""The plan step: the config rules that need other modules, run right after loading and before any compute.

``grm.config`` only names things (it imports nothing of the core); what needs the evaluation, the benchmark
registry or the data folder is checked here, and every entry point (``grm run``, ``grm config``, the pipeline's
runtime, the preflight) calls ``resolve_config`` straight after ``load_config``, so a bad value still fails at
load, before the first stage, with exit 2 and the message it always had:

* ``registry.gate_metric: null`` becomes the final model's Voting@k_max accuracy on the held-out split
  (``default_gate_metric``), and an explicit gate metric must be one the enabled stages produce
  (``expected_metrics``, learnt from the evaluation code itself);
* ``eval.benchmarks`` are registered benchmarks; ``data.window`` has one of its forms (``grm.drops``);
* ``check_benchdata`` / ``check_data_files``: the benchmark copies and the data folder's files (they need the
  project folder).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Sequence
from pathlib import Path

from grm.ablations import ABLATIONS
from grm.config import (
    ConfigError,
    PipelineConfig,
    evaluated_models,
    final_model,
    general_data_needed,
    load_config,
)
from grm.files import project_path


def load_pipeline(paths: Sequence[str | Path] = (), overrides: Iterable[str] = ()) -> PipelineConfig:
    """``load_config(PipelineConfig, paths, overrides)`` and the plan step: the config every run uses.

    Raises:
        ConfigError: an unknown key or bad value (``load_config``), or a rule of ``resolve_config``.
    """
    return resolve_config(load_config(PipelineConfig, paths, overrides))


def resolve_config(cfg: PipelineConfig) -> PipelineConfig:
    """``cfg`` with ``registry.gate_metric: null`` derived, after every rule that needs other modules.

    Raises:
        ConfigError: ``PipelineConfig: <the problems, one a line>``, as a rule of the config itself reads.
    """
    from grm.drops import parse_window

    try:
        parse_window(cfg.data.window)
    except ValueError as exc:  # a rule of the data section, named as the section's own rules are
        raise ConfigError(f"data: {exc}") from None
    problems = pipeline_problems(cfg)
    if problems:
        raise ConfigError("PipelineConfig: " + "\n".join(problems))
    if cfg.registry.gate_metric is None:
        registry = dataclasses.replace(cfg.registry, gate_metric=default_gate_metric(cfg))
        cfg = dataclasses.replace(cfg, registry=registry)
    return cfg


def pipeline_problems(cfg: PipelineConfig) -> list[str]:
    """The plan step's rules across sections as messages naming the keys, their values and the fix:
    ``eval.benchmarks`` registered, the gate metric produced by the enabled stages."""
    from grm.benchmarks import available

    problems = []
    for name in cfg.eval.benchmarks:
        if name not in available("benchmark"):
            problems.append(
                f"eval.benchmarks has {name!r}, which is not a registered benchmark; use names from "
                f"{available('benchmark')} (grm eval --help)"
            )
    if cfg.registry.gate_metric is not None:
        problem = gate_metric_problem(cfg, cfg.registry.gate_metric)
        if problem:
            problems.append(problem)
    return problems


# ---- what the enabled stages produce ---------------------------------------------------------------------------
def heldout_name(cfg: PipelineConfig) -> str:
    """The benchmark segment of the held-out split's metric names: ``world``, or ``heldout`` for a data folder."""
    from grm.eval.metric_key import heldout_benchmark

    return heldout_benchmark(cfg.data.source)


def default_gate_metric(cfg: PipelineConfig) -> str:
    """The final model's Voting@k_max accuracy on the held-out split."""
    from grm.eval.metric_key import VOTING, metric_name

    return f"eval/{heldout_name(cfg)}/{metric_name(final_model(cfg))}/{VOTING}_k{cfg.eval.k_max}/accuracy"


def expected_metrics(cfg: PipelineConfig) -> set[str]:
    """The exact metric names the held-out evaluations of the enabled stages log.

    Derived from the ``EvalSpec`` of each evaluated model (``grm.eval.expected``: no probe evaluation) with the
    run's ks, methods, hygiene and seed-agreement settings. Benchmarks of ``eval.benchmarks`` are not included
    (their metrics depend on the benchmark's subsets): ``gate_metric_problem`` accepts their prefixes. With
    ``eval.meta_min_auc`` set, MetaRM@k may fall back at run time, so its cells' ``fell_back`` names are included.
    """
    votes = (cfg.eval.meta_vote, "fallback") if cfg.eval.meta_min_auc is not None else (cfg.eval.meta_vote,)
    return set().union(*(
        _spec_metrics(
            evaluated_models(cfg), heldout_name(cfg), tuple(cfg.eval.ks), cfg.meta_rm.enabled, cfg.eval.k_meta,
            cfg.eval.temperature, cfg.sampling.template, cfg.eval.tie_policy, cfg.eval.hygiene, cfg.eval.seed_agreement,
            vote,
        )
        for vote in votes
    ))  # fmt: skip


@functools.lru_cache(maxsize=256)
def _spec_metrics(
    models: tuple[str, ...],
    benchmark: str,
    ks: tuple[int, ...],
    meta: bool,
    k_meta: int | None,
    temperature: float,
    template: str,
    tie_policy: str,
    hygiene: bool,
    seed_agreement: bool,
    meta_vote: str = "top",
) -> frozenset[str]:
    """``expected_metrics`` of one combination of the settings metric names depend on (memoised: every config
    build checks its gate metric)."""
    from grm.eval.expected import expected_metrics as spec_metrics
    from grm.eval.metric_key import METARM, VOTING
    from grm.eval.spec import EvalSpec

    methods = (VOTING, METARM) if meta else (VOTING,)
    names: set[str] = set()
    for model in models:
        spec = EvalSpec(
            benchmark=benchmark,
            model_name=model,
            ks=ks,
            methods=methods,
            k_meta=k_meta,
            temperature=temperature,
            max_new_tokens=1,
            seed=0,
            template=template,
            tie_policy=tie_policy,
            hygiene=hygiene,
            seed_agreement=seed_agreement,
            meta_vote=meta_vote if meta else "top",
        )
        names |= spec_metrics(spec)
    return frozenset(names)


def benchmark_metric_prefixes(cfg: PipelineConfig) -> set[str]:
    """``eval/{benchmark}/{model}/{cell}/`` for every ``eval.benchmarks`` entry and trained model (rft, rl).

    The cells are those the held-out evaluation of the same model produces (``expected_metrics``: greedy, the
    position-swap hygiene cell, Voting@k, MetaRM@k): the bench stages run the same ``evaluate`` with the same
    settings; only the metrics inside a cell depend on the benchmark's scorer.
    """
    from grm.eval.metric_key import metric_name

    models = [m for m in evaluated_models(cfg) if m in ("rft", "rl")]
    cells = {name.split("/")[3] for name in expected_metrics(cfg) if name.split("/")[2] in models}
    return {f"eval/{metric_name(b)}/{m}/{c}/" for b in cfg.eval.benchmarks for m in models for c in cells}


def _why_missing(cfg: PipelineConfig, metric: str) -> str:
    from grm.eval.metric_key import METARM

    parts = metric.split("/")
    notes = []
    if len(parts) >= 3 and parts[0] == "eval":
        bench, model = parts[1], parts[2]
        if bench not in {heldout_name(cfg), *cfg.eval.benchmarks}:
            notes.append(
                f"the held-out split is named {heldout_name(cfg)!r} (data.source={cfg.data.source!r}), not {bench!r}"
            )
        if model == "rl" and not cfg.rl.enabled:
            notes.append(f"rl.max_steps={cfg.rl.max_steps} turns rl.train off, so no rl metrics")
        if model == "sft_unfiltered" and not cfg.rft.sft_unfiltered:
            notes.append("rft.sft_unfiltered=false: no sft_unfiltered metrics")
        ablation = model.removeprefix("rft_")
        if ablation in ABLATIONS and ablation not in cfg.rft.ablations:
            notes.append(f"rft.ablations={list(cfg.rft.ablations)} does not train {ablation!r}")
        if len(parts) >= 4:
            if parts[3].startswith(f"{METARM}_k") and not cfg.meta_rm.enabled:
                notes.append("meta_rm.enabled=false: no metarm_k* cells")
            if parts[3].partition("_k")[2].isdigit() and int(parts[3].partition("_k")[2]) not in cfg.eval.ks:
                notes.append(f"eval.ks={list(cfg.eval.ks)} has no k={parts[3].partition('_k')[2]}")
    return "; ".join(notes)


def gate_metric_problem(cfg: PipelineConfig, metric: str) -> str | None:
    """Why ``metric`` will not be measured in this run (None: it will)."""
    produced = expected_metrics(cfg)
    if metric in produced or any(metric.startswith(p) for p in benchmark_metric_prefixes(cfg)):
        return None
    tail = "/".join(metric.split("/")[3:])
    close = sorted(m for m in produced if tail and m.endswith("/" + tail)) or sorted(
        m for m in produced if m.endswith("/accuracy") and "/voting_k" in m
    )
    why = _why_missing(cfg, metric)
    return (
        f"registry.gate_metric={metric!r} is not a metric this run produces"
        + (f" ({why})" if why else "")
        + f". Set registry.gate_metric to one of {close[:8]}, or to null for the default "
        f"{default_gate_metric(cfg)!r} (the final model's Voting@k_max accuracy)"
    )


# ---- the files the config names (they need the project folder) ---------------------------------------------
def check_benchdata(cfg: PipelineConfig, project_dir: str | Path = ".") -> None:
    """``eval.benchdata`` (relative to ``project_dir``) holds every benchmark of ``eval.benchmarks``: checked at
    load, so a missing copy fails before training rather than at the benchmark stage after it.

    Raises:
        ConfigError: naming eval.benchdata, the missing folder and the fix.
    """
    if not cfg.eval.benchmarks:
        return
    from grm.benchmarks import bundled, get_benchmark, registry

    try:
        root = bundled.resolve(cfg.eval.benchdata, project_dir)
    except OSError as exc:  # the shipped archives are missing or cannot be unpacked: the message names the fix
        raise ConfigError(f"eval.benchdata=null (the copy shipped in the repository): {exc}") from exc
    shown = "null (the copy shipped in the repository)" if cfg.eval.benchdata is None else repr(cfg.eval.benchdata)
    problems = []
    for name in cfg.eval.benchmarks:
        if get_benchmark(name).local_shards is None:
            problems.append(f"{name} has no local reader (hub only)")
            continue
        try:
            registry.local_shards(get_benchmark(name), root)
        except (FileNotFoundError, OSError) as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise ConfigError(
            f"eval.benchdata={shown} ({root}) lacks what eval.benchmarks={list(cfg.eval.benchmarks)} "
            f"reads: {'; '.join(problems)}. Point eval.benchdata at the benchdata folder, or drop those benchmarks "
            "(--set eval.benchmarks=[] turns the benchmark evaluation off)"
        )


def check_data_files(cfg: PipelineConfig, project_dir: str | Path = ".", training: bool = True) -> None:
    """The data folder's files, checked at load (``data.source`` relative to ``project_dir``).

    A folder source needs ``train/val/test.jsonl``, and ``general.jsonl`` when a general-instruction term is on
    (the embedded world brings its own). Missing general data is refused rather than skipped: the defaults mix it
    into RFT and RL because the recipe measurably needs it (README), so training without it is a different recipe
    the user should choose (``rft.general_ratio=0 rl.general_coef=0``), not learn about from a warning after training.

    Args:
        cfg: the resolved config.
        project_dir: the root a relative ``data.source`` is read from.
        training: the flow trains (``spct_pipeline``); evaluation and data-only flows need the splits only.

    Raises:
        ConfigError: naming data.source, the missing files and the fix.
    """
    if cfg.data.source == "world":
        return
    folder = project_path(project_dir, cfg.data.source)
    from grm.drops import GENERAL_FILE, SPLIT_FILES, is_landing, select_drops

    landing = is_landing(folder) and any(p.is_dir() for p in folder.iterdir())
    if landing:  # a landing folder of drops: every drop's layout and the window (rows: grm.source_check)
        select_drops(folder, cfg.data.window, project_path(project_dir, cfg.data.data_dir))
    missing = [f for f in SPLIT_FILES if not (folder / f).is_file()] if not landing else []
    if missing:
        raise ConfigError(
            f"data.source={cfg.data.source!r}: {folder} lacks {', '.join(missing)}; point data.source at a folder "
            "with train.jsonl, val.jsonl and test.jsonl (canonical items, docs/data.md) or use data.source=world"
        )
    needed = general_data_needed(cfg) if training else []
    if needed and not (folder / GENERAL_FILE).is_file():
        raise ConfigError(
            f"data.source={cfg.data.source!r}: {', '.join(needed)} mix general-instruction data into training, but "
            f'{folder / GENERAL_FILE} does not exist. Add it (JSONL rows {{"prompt": ..., "completion": ...}}; '
            "the paper mixes ~5.8 general examples per judgement), or train on judgements only with "
            "--set rft.general_ratio=0 --set rl.general_coef=0"
        )
