"""``grm world``: write the embedded world's splits (and general-instruction data) as canonical JSONL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def world_command(
    output: Annotated[
        Path, typer.Option(help="folder for train.jsonl, val.jsonl, test.jsonl and general.jsonl")
    ] = Path("data/world"),
    config: Annotated[Path | None, typer.Option(help="pipeline YAML whose `world` section to use")] = None,
    override: Annotated[
        list[str] | None, typer.Option("--set", help="dotted override, e.g. --set world.seed=3")
    ] = None,
) -> None:
    """Generate the embedded synthetic world (deterministic in world.seed) and write it as JSONL."""
    from grm.files import check_output_dir, write_jsonl_atomic
    from grm.plan import load_pipeline
    from grm.schemas import write_items
    from grm.world.generator import general_instruction_examples, generate_world

    check_output_dir(output)
    cfg = load_pipeline([config] if config else [], override or [])
    splits = generate_world(cfg.world)
    for name, items in splits.items():
        write_items(output / f"{name}.jsonl", items)
        typer.echo(f"{name}: {len(items)} items -> {output / f'{name}.jsonl'}")
    general = general_instruction_examples(cfg.world, seed=cfg.world.seed)
    write_jsonl_atomic(output / "general.jsonl", general)
    typer.echo(f"general: {len(general)} examples -> {output / 'general.jsonl'}")
