"""``grm data check FOLDER``: validate a drop, or a whole landing folder, exactly as a run would read it, without
training, publishing or tracking anything (docs/data.md).

It runs, on ``FOLDER`` as ``data.source`` with the given config: the landing layout and the ``data.window``
selection, the strict row loader (file, line, field), ids unique across drops, the ``general.jsonl`` format, that the
configured teacher can judge the rows (``grm.source_check``), and the ``preference_items`` GX suite (row counts vs
``data.min_items``, ``data.max_responses``/``data.max_chars``, unique ids, decontamination) on the combined splits,
its rows named back in the drop files. Exit 0 with a summary (items per split per drop); exit 2 with one message.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from grm.drops import SPLITS, Selection
from grm.errors import UserError

GENERAL = "general.jsonl"
ROW_RE = re.compile(r"\b(train|val|test)\.jsonl:(\d+)")


def line_map(selection: Selection, split: str) -> list[tuple[int, Path]]:
    """(first line in the combined split, drop file) per selected drop, as ``data.prepare`` concatenates them."""
    out, start = [], 1
    for drop in selection.selected:
        data = drop.split(split).read_bytes()
        out.append((start, drop.split(split)))
        start += data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    return out


def drop_row(text: str, maps: dict[str, list[tuple[int, Path]]]) -> str:
    """``train.jsonl:17`` (a combined split's line) -> ``/.../2026-w50/train.jsonl:5`` (the drop file's line)."""

    def one(m: re.Match[str]) -> str:
        split, line = m.group(1), int(m.group(2))
        start, path = max((s, p) for s, p in maps[split] if s <= line)
        return f"{path}:{line - start + 1}"

    return ROW_RE.sub(one, text)


def run_suite(cfg, selection: Selection) -> int:  # noqa: ANN001 - a PipelineConfig
    """The GX ``preference_items`` suite on the combined splits; returns its number of expectations.

    Raises:
        UserError: every failing expectation with its rows named in the drop files.
    """
    from tasks import validation
    from tasks.data import concatenate

    with tempfile.TemporaryDirectory(prefix="grm-data-check-") as tmp:
        files = {}
        for split in SPLITS:
            files[split] = Path(tmp) / f"{split}.jsonl"
            concatenate([d.split(split) for d in selection.selected], files[split])
        try:
            summary = validation.validate_items(files, cfg.data, Path(tmp) / "docs", cfg.data.min_items)
        except validation.DataValidationError as exc:  # no rows at all
            raise UserError(str(exc).split("\nFix those rows")[0], path=selection.root) from None
    if summary.success:
        return summary.n_expectations
    maps = {split: line_map(selection, split) for split in SPLITS}
    lines = [f"Great Expectations suite {summary.suite!r} failed {len(summary.failures)} expectation(s):"]
    for f in summary.failures:
        rows = [drop_row(r, maps) for r in f["rows"][:10]]
        more = f" ... (+{len(f['rows']) - 10} more)" if len(f["rows"]) > 10 else ""
        lines.append(f"  - {f['expectation']}({f['column']}): {', '.join(rows)}{more}")
    raise UserError(
        "\n".join(lines),
        path=selection.root,
        fix="fix those rows in their drop (or the data.* limits in the config) and check again",
    )


def check_command(
    folder: Annotated[Path, typer.Argument(help="a drop (train/val/test.jsonl) or a landing folder of drops")],
    config: Annotated[Path, typer.Option(help="pipeline YAML whose data.* rules and model.teacher apply")] = Path(
        "configs/default.yaml"
    ),
    override: Annotated[
        list[str] | None, typer.Option("--set", help="dotted override, e.g. --set data.window=last:2")
    ] = None,
) -> None:
    """Validate a drop or a landing folder without training: rows, ids across drops, general.jsonl, the GX suite,
    and that the configured teacher can judge the rows. Exit 0 with a summary, 2 with what to fix."""
    from grm.general_data import read_general
    from grm.plan import check_data_files, load_pipeline
    from grm.source_check import check_source

    source = folder.expanduser().resolve()
    # one drop of a landing folder, checked before it is published (docs/data.md): its general.jsonl is the landing
    # folder's, read from there, not required inside the drop
    landing_general = source.parent / GENERAL
    in_landing = not (source / GENERAL).exists() and landing_general.is_file()
    in_landing = in_landing and any((source / f"{s}.jsonl").exists() for s in SPLITS)
    no_mix = ["rft.general_ratio=0", "rl.general_coef=0"] if in_landing else []
    cfg = load_pipeline([config], [*(override or []), f"data.source={source}", *no_mix])
    report = check_source(cfg, ".", training=True)
    assert report is not None  # data.source is a folder
    check_data_files(cfg, ".", training=True)  # general.jsonl when the training mix needs it
    general_rows = len(read_general(landing_general)) if in_landing else report.general_rows
    sel = report.selection
    n_expectations = run_suite(cfg, sel)
    kind = f"landing folder, {len(sel.drops)} drop(s)" if sel.landing else "one drop (split files in the folder)"
    typer.echo(f"{source}: {kind}; data.window={cfg.data.window} reads {len(sel.selected)}: {', '.join(sel.names)}")
    for note in report.notes:
        typer.echo(f"note: {note}")
    width = max(len("total"), *(len(n) for n in sel.names))
    typer.echo(f"  {'drop':<{width}}  {'train':>7} {'val':>7} {'test':>7}")
    for name in sel.names:
        c = report.counts[name]
        typer.echo(f"  {name:<{width}}  {c['train']:>7} {c['val']:>7} {c['test']:>7}")
    t = report.totals()
    typer.echo(f"  {'total':<{width}}  {t['train']:>7} {t['val']:>7} {t['test']:>7}")
    general = "absent" if general_rows is None else f"{general_rows} examples"
    if in_landing:
        general += f" (the landing folder's {landing_general})"
    typer.echo(f"general.jsonl: {general}")
    typer.echo(
        f"ok: rows (strict loader), ids unique across drops, GX suite preference_items ({n_expectations} "
        f"expectations), model.teacher={cfg.model.teacher} can judge the train/test rows"
    )
