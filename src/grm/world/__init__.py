"""The embedded synthetic world: items, a noisy teacher, a word-level tokenizer and a tiny Llama student."""

from grm.world.generator import (
    FAMILIES,
    World,
    WorldConfig,
    general_instruction_examples,
    generate_world,
    solve,
)
from grm.world.teacher import TeacherConfig, TeacherSampler, parse_compact_prompt

__all__ = [
    "FAMILIES",
    "TeacherConfig",
    "TeacherSampler",
    "World",
    "WorldConfig",
    "general_instruction_examples",
    "generate_world",
    "parse_compact_prompt",
    "solve",
]
