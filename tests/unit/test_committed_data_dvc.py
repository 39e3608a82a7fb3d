"""The repository's committed ``data.dvc`` pins the version the default config's ``data.prepare`` produces.

Why: ``git clone`` + ``dvc pull`` must fetch what the code generates; the file went stale once (the world generator
changed after it was committed, and nothing compared them). Generating the default world takes ~0.3 s; when this
fails after a deliberate change to the world, run the default pipeline (or ``python -m flows prepare_data --config
configs/default.yaml``) and commit the ``data.dvc`` it writes.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from grm.plan import load_pipeline
from grm.schemas import write_items
from grm.world import generate_world
from tasks.data_store import dir_md5
from tasks.engine.stages import file_md5

REPO = Path(__file__).resolve().parents[2]


def test_committed_data_dvc_is_the_default_worlds_version(tmp_path: Path) -> None:
    cfg = load_pipeline([str(REPO / "configs" / "default.yaml")], [])
    assert cfg.data.source == "world" and cfg.data.data_dir == "data"
    for split, items in generate_world(cfg.world).items():  # what build_prepare writes
        write_items(tmp_path / f"{split}.jsonl", items)
    files = {p.name: file_md5(p) for p in tmp_path.iterdir()}
    (out,) = yaml.safe_load((REPO / "data.dvc").read_text())["outs"]
    assert out["path"] == "data" and out["nfiles"] == len(files)
    assert out["size"] == sum(p.stat().st_size for p in tmp_path.iterdir())
    assert out["md5"] == dir_md5(files), "data.dvc is stale: regenerate it (see this module's docstring)"
