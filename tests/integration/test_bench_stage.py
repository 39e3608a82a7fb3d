"""``bench.{benchmark}.{model}`` for real: an embedded world model (128 positions) on real benchmark items, every
prompt fitted into the context and counted, metrics named as the gate accepts them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from grm.config import PipelineConfig, from_dict
from grm.plan import benchmark_metric_prefixes
from tasks.benchmarks import BENCH, report_markdown
from tasks.engine.stages import BuildContext, StageResult
from tasks.tracking import NullTracker

pytestmark = pytest.mark.slow  # builds and samples a model


@pytest.fixture(scope="module")
def world_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from grm.training import spct

    cfg = PipelineConfig()
    out = tmp_path_factory.mktemp("base")
    return spct.build_base_model("embedded", cfg.model.tiny, cfg.world, out, seed=0)


@pytest.mark.parametrize("benchmark", ["rewardbench", "realmistake"])
def test_bench_stage_fits_real_items_into_the_tiny_context_and_logs_gate_metrics(
    benchmark: str, world_model: Path, tmp_path: Path
) -> None:
    cfg = from_dict(
        PipelineConfig,
        {"eval": {"benchmarks": [benchmark], "benchmark_limit": 3, "ks": [1, 2]},  # the default: the shipped copy
         "sampling": {"max_new_tokens": 8}},
    )  # fmt: skip
    s = BENCH.select(cfg, benchmark=benchmark, model="rl")
    files = {"benchdata": Path(BENCH.files(cfg, benchmark=benchmark, model="rl")["benchdata"].path)}
    model = StageResult("rl.train", "k", str(world_model.parent), {"model": world_model.name})
    ctx = BuildContext(tmp_path, "run", NullTracker(), tmp_path, tmp_path, {"model": model, "meta_rm": None}, files)
    out = BENCH.build(s, ctx)
    m = out.metrics
    base = f"eval/{benchmark}/rl"
    assert m[f"{base}/context/n_loaded"] == 3
    assert m[f"{base}/context/n_fit"] + m[f"{base}/context/n_refused"] == 3
    assert m[f"{base}/context/prompt_budget"] == cfg.model.tiny.max_position_embeddings - 8
    assert m[f"{base}/context/n_truncated"] >= 1  # real English text does not fit 120 tokens uncut
    if m[f"{base}/context/n_fit"]:
        prefixes = benchmark_metric_prefixes(cfg)
        cells = [k for k in m if "/context/" not in k]
        assert cells and all(any(k.startswith(p) for p in prefixes) for k in cells)
    assert (tmp_path / "report.json").is_file()
    result = dataclasses.replace(model, stage="bench", path=str(tmp_path), outputs=out.outputs)
    text = report_markdown(result)
    assert text.startswith(f"context fit: {int(m[f'{base}/context/n_fit'])} items evaluated")
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["fit"]["truncated"] and data["n_truncated"] == m[f"{base}/context/n_truncated"]
