"""The ``grm`` command line. Every command has ``--help``; heavy imports happen inside the commands.

User errors (``grm.errors.UserError``: bad files, rows, config keys, model folders) are turned into a few lines on
stderr and exit code 2 in one place, ``GrmGroup.invoke``; ``grm --debug`` (or ``GRM_DEBUG=1``) shows their
traceback. So is a service that is down or refuses the credentials (``tasks.service_errors.explain``: MLflow,
Prefect, the DVC remote), wherever in a client library it surfaced. Any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from grm.errors import UserError
from grm.threads import strict_math

USER_ERROR_EXIT = 2
DEBUG_ENV = "GRM_DEBUG"


def is_user_error(exc: BaseException) -> bool:
    """A ``UserError`` or a missing/wrong-kind path the user named (its message names the path), also when a
    pipeline stage wrapped it (``tasks.engine.runtime.StageError``: its message names the stage, the cause and how to
    resume)."""
    if isinstance(exc, UserError | FileNotFoundError | IsADirectoryError | NotADirectoryError):
        return True
    if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
        return True
    cause = getattr(exc, "cause", None)
    return type(exc).__name__ == "StageError" and is_user_error(cause) if cause is not None else False


# OS errors the user fixes in the environment (free space, permissions), not bugs: exit 2 with the path, no traceback
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES})


def _debug(ctx: click.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _service_error(exc: BaseException) -> UserError | None:
    """The ``tasks.service_errors.ServiceError`` an exception stands for (None: a bug, keep the traceback)."""
    import sys

    if "tasks" not in sys.modules:  # no command that talks to a service has run
        return None
    try:
        from tasks.service_errors import explain
    except ImportError:  # a stand-in ``tasks`` (tests) or a broken install: keep the original error
        return None

    return explain(exc)


class GrmGroup(TyperGroup):
    """The root command group: the one place where a user error becomes ``error: ...`` and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise  # click's own exits (a command's `typer.Exit(2)` after its message, usage errors): not failures
        except Exception as exc:
            if _debug(ctx):
                raise
            if not is_user_error(exc):
                exc = _service_error(exc)  # a server down or refusing the credentials, deep in a client library
                if exc is None:
                    raise
            typer.echo(f"error: {exc}", err=True)
            typer.echo(f"(exit code {USER_ERROR_EXIT}; rerun with `grm --debug ...` for the traceback)", err=True)
            ctx.exit(USER_ERROR_EXIT)


app = typer.Typer(
    name="grm",
    cls=GrmGroup,
    help="Generalist reward models with Self-Principled Critique Tuning (DeepSeek-GRM).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", envvar=DEBUG_ENV, help="show the traceback of user errors too")
    ] = False,
) -> None:
    """Generalist reward models with Self-Principled Critique Tuning (DeepSeek-GRM)."""
    strict_math()  # MKL's strict reproducibility for every command's builds (grm.threads)


def check_sampling_options(
    *,
    temperature: float,
    k: int,
    k_meta: int | None,
    meta_rm: Path | None,
    max_new_tokens: int = 1,
    k_flag: str = "--k",
) -> None:
    """Refuse sampling options that would be silently ignored or meaningless: ``--k`` or ``--max-new-tokens``
    below 1, a negative or non-finite temperature, a ``--k-meta`` without ``--meta-rm``, or one outside ``1..k``.

    Raises:
        UserError: naming the option, its value and the fix.
    """
    import math

    if k < 1:
        raise UserError(f"{k} samples per item; at least 1 is needed", field=k_flag, fix="use e.g. --k 8")
    if max_new_tokens < 1:
        raise UserError(f"{max_new_tokens}: must be >= 1", field="--max-new-tokens", fix="use e.g. 512")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise UserError(
            f"{temperature} is not a finite number >= 0", field="--temperature", fix="use e.g. 0.5 (0 = greedy)"
        )
    if k_meta is None:
        return
    if meta_rm is None:
        raise UserError(
            f"{k_meta}: the number of samples a meta RM keeps means nothing without --meta-rm DIR",
            field="--k-meta",
            fix="add --meta-rm DIR, or drop --k-meta",
        )
    if not 1 <= k_meta <= k:
        raise UserError(
            f"{k_meta} is outside 1..{k}: the meta RM keeps between 1 and {k_flag} ({k}) samples",
            field="--k-meta",
            fix=f"use a value in 1..{k} (default: k/2)",
        )


@app.command()
def score(
    model: Annotated[
        str,
        typer.Option(
            help="GRM: a local model dir, an http(s) URL of an OpenAI-compatible server, vllm:PATH, world-teacher, or "
            "champion / challenger / models:/NAME@ALIAS (the project's MLflow registry, from the current folder)"
        ),
    ],
    input: Annotated[Path, typer.Option("--input", help="canonical items JSONL")],
    output: Annotated[Path, typer.Option(help="where to write one judgement record per item (JSONL)")],
    k: Annotated[int, typer.Option(help="samples per item (Voting@k)")] = 8,
    temperature: Annotated[float, typer.Option(help="sampling temperature (paper: 0.5); 0 = greedy")] = 0.5,
    seed: Annotated[int, typer.Option(help="seed for shuffles, sampling and tie-breaks")] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="generation budget per judgement")] = 512,
    template: Annotated[
        str | None,
        typer.Option(
            help="prompt template: deepseek-grm or compact (default: the registry's for champion, else deepseek-grm)"
        ),
    ] = None,
    meta_rm: Annotated[Path | None, typer.Option(help="meta RM dir: keep the k_meta best-rated samples")] = None,
    k_meta: Annotated[int | None, typer.Option(help="samples the meta RM keeps (default k/2)")] = None,
    shuffle: Annotated[bool, typer.Option(help="shuffle response order per sample")] = True,
    trust_remote_code: Annotated[bool, typer.Option(help="let the model repo run its own code")] = False,
) -> None:
    """Score items with a GRM: k shuffled judgements per item, summed (Voting@k), optionally meta-guided."""
    from grm.files import check_output_file, write_jsonl_atomic
    from grm.method import judging
    from grm.sampling import build_sampler
    from grm.schemas import read_items
    from grm_cli.models import resolve_model

    check_sampling_options(temperature=temperature, k=k, k_meta=k_meta, meta_rm=meta_rm, max_new_tokens=max_new_tokens)
    check_output_file(output, inputs=[input])
    items = read_items(input)
    resolved = resolve_model(model)
    sampler = build_sampler(resolved.model, trust_remote_code=trust_remote_code)
    meta_scorer = None
    if meta_rm is not None:
        from grm.meta_rm import load_meta_scorer

        meta_scorer = load_meta_scorer(meta_rm)
    results = judging.judge_items(
        items,
        sampler,
        k=k,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        seed=seed,
        template=template or resolved.template or "deepseek-grm",
        shuffle=shuffle,
        meta_scorer=meta_scorer,
    )
    method = "metarm" if meta_scorer is not None else "voting"
    records = [
        _score_record(item, res, k=k, method=method, k_meta=k_meta, seed=seed)
        for item, res in zip(items, results, strict=True)
    ]
    write_jsonl_atomic(output, records)
    correct = sum(r["correct"] for r in records)
    fails = sum(1 for r in results for s in r.samples if s.scores is None)
    over = int(getattr(getattr(sampler, "stats", None), "prompts_over_context", 0) or 0)
    if over:
        typer.echo(
            f"warning: {over} prompt(s) longer than the model's context were not generated (finish_reason "
            "'context'); their samples count as parse failures",
            err=True,
        )
    typer.echo(
        f"scored {len(items)} items (k={k}, {method}) -> {output}; accuracy vs labels {correct / max(1, len(items)):.3f}; "
        f"parse failures {fails}/{len(items) * k}"
    )


def _score_record(item: Any, res: Any, *, k: int, method: str, k_meta: int | None, seed: int) -> dict[str, Any]:
    """One output line of ``grm score``: the item's verdict (``grm.method.verdicts.decide``) and its samples."""
    from grm.method import verdicts

    v = verdicts.decide(res, k=k, method=method, k_meta=k_meta, seed=seed)
    samples = [
        {"order": s.order, "text": s.text, "scores": s.scores, "status": s.status, "meta_score": s.meta_score}
        for s in res.samples
    ]
    return {
        "id": item.id,
        "method": method,
        "k": k,
        "final_scores": v.totals,
        "predicted": v.predicted,
        "tied": v.tied,
        "correct": v.credit,
        "samples": samples,
    }


def main() -> None:  # pragma: no cover - console entry
    app()


# Commands defined in their own modules (each imports its heavy dependencies lazily): (name, module, function).
COMMANDS: list[tuple[str, str, str]] = [
    ("world", "grm_cli.world", "world_command"),
    ("eval", "grm_cli.eval", "eval_command"),
    ("serve", "grm_cli.serve", "serve"),
    ("run", "grm_cli.run", "run_command"),
    ("config", "grm_cli.config", "config_command"),
    ("reproduce", "grm_cli.reproduce", "reproduce"),
    ("ui", "grm_cli.reproduce", "ui"),
    ("gc", "grm_cli.gc", "gc_command"),
    ("doctor", "grm_cli.doctor", "doctor_command"),
]


def _register_optional_commands() -> None:
    import importlib

    for name, module, func in COMMANDS:
        app.command(name)(getattr(importlib.import_module(module), func))
    from grm_cli.data import DATA_COMMANDS, register_data_commands

    if DATA_COMMANDS:
        app.add_typer(register_data_commands(), name="data")
    from grm_cli.team import team_app

    app.add_typer(team_app, name="team")


_register_optional_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
