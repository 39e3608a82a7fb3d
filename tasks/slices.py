"""Config slices several stages share: the teacher, the general-instruction data and the data splits.

A slice holds the config values a build reads and nothing else (``tasks.engine.stages``); each ``select_*`` here is pure,
each ``*_files`` names the files the slice's build reads (hashed by content into the key). The published data
splits are upstream inputs instead (``tasks.data.split``: keyed by their DVC md5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from grm.config import PipelineConfig, SamplingConfig
from grm.sampling.base import Sampler
from grm.sampling.spec import FOLDER, HTTP, VLLM, is_world_teacher, parse_model_spec, spec_kind
from grm.training import spct
from grm.world.generator import WorldConfig
from tasks.engine.stages import FileInput

TEACHER_FILE = "model.teacher"
GENERAL_FILE = "general.jsonl"


@dataclass(frozen=True)
class TeacherSlice:
    """The teacher's identity, by kind (only what that kind reads):

    - ``world-teacher[:ERROR_RATE]``: the spec, ``world`` and ``seed``;
    - a local model folder or ``vllm:PATH``: ``kind`` plus the weights, hashed by content (file input
      ``model.teacher``, so the path itself is not keyed) and the ``sampling`` backend options;
    - an ``http(s)://`` server: the URL, ``served_model`` (``model.teacher_model_name``) and ``sampling``. The weights
      behind a server cannot be hashed from here: URL + served model name *are* the identity, so serve new weights
      under a new model name (or URL) to get them sampled again.
    """

    kind: str  # world | http | local | vllm
    spec: str | None = None  # the world-teacher spec or the URL; None for local/vllm (the path is a file input)
    served_model: str | None = None
    world: WorldConfig | None = None
    seed: int | None = None
    sampling: SamplingConfig | None = None


def teacher_kind(spec: str) -> str:
    """world | http | vllm | local (``grm.sampling.spec``; a spec that does not parse is a local path here: the
    run's preflight names its error first)."""
    if is_world_teacher(spec):
        return "world"
    return {HTTP: "http", VLLM: "vllm"}.get(spec_kind(spec) or FOLDER, "local")


def select_teacher(cfg: PipelineConfig, seed: int) -> TeacherSlice:
    """The teacher's slice; ``seed`` (the world teacher's sampling seed) is chosen by the calling stage."""
    spec = cfg.model.teacher.strip()
    kind = teacher_kind(spec)
    if kind == "world":
        return TeacherSlice("world", spec, world=cfg.world, seed=seed)
    if kind == "http":
        return TeacherSlice("http", spec, served_model=cfg.model.teacher_model_name, sampling=cfg.sampling)
    return TeacherSlice(kind, sampling=cfg.sampling)


def teacher_files(cfg: PipelineConfig) -> dict[str, FileInput]:
    """The teacher's weights folder for a local / ``vllm:`` teacher (nothing for world or HTTP teachers)."""
    spec = cfg.model.teacher.strip()
    kind = teacher_kind(spec)
    if kind in ("world", "http"):
        return {}
    path = parse_model_spec(spec).location if kind == "vllm" else spec
    return {TEACHER_FILE: FileInput(path, "model.teacher")}


def make_teacher(t: TeacherSlice, files: Mapping[str, Path | None]) -> Sampler:
    """The teacher sampler of a ``TeacherSlice`` (``files``: the build's resolved file inputs)."""
    if t.kind in ("world", "http"):
        assert t.spec is not None
        return spct.teacher_sampler(t.spec, t.served_model, t.world, t.sampling, t.seed)
    path = files[TEACHER_FILE]
    spec = f"vllm:{path}" if t.kind == "vllm" else str(path)
    return spct.teacher_sampler(spec, None, None, t.sampling, None)


@dataclass(frozen=True)
class GeneralSlice:
    """General-instruction data of the RFT/RL mix: the world's own tasks (``world`` + ``seed``), or, for a
    ``data.source`` folder, its ``general.jsonl`` (an optional file input keyed by content: absent is keyed too). A
    landing folder of drops keeps it at its root, shared by every drop (``grm.drops``)."""

    world: WorldConfig | None
    seed: int | None


def select_general(cfg: PipelineConfig, seed: int) -> GeneralSlice:
    """``seed``: the world's general-example draw, chosen by the calling stage."""
    if cfg.data.source == "world":
        return GeneralSlice(cfg.world, seed)
    return GeneralSlice(None, None)


def general_files(cfg: PipelineConfig) -> dict[str, FileInput]:
    if cfg.data.source == "world":
        return {}
    return {GENERAL_FILE: FileInput(str(Path(cfg.data.source) / GENERAL_FILE), "data.source", required=False)}


def general_examples(g: GeneralSlice, path: Path | None) -> list[dict[str, str]]:
    """The general examples of ``g`` (``path``: the resolved ``general.jsonl``, None when absent)."""
    if g.world is not None:
        from grm.world.generator import general_instruction_examples

        return general_instruction_examples(g.world, seed=g.seed or 0)
    if path is None:
        from tasks.engine.runtime import logger

        logger().warning(
            "no %s beside the data.source splits: RFT trains on sampled judgements only (the paper mixes general "
            "data)",
            GENERAL_FILE,
        )
        return []
    from grm.general_data import read_general

    return read_general(path)  # strict: file:line: field: problem (docs/data.md)
