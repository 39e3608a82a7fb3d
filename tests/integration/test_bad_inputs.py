"""The bad-input corpus: one entry per kind of bad input, across every entry point a user meets first.

Entry points: ``grm score`` (--input, --output, --model), ``grm eval`` (--benchmark FILE, --scores-file,
--output), config files and ``--set`` (through ``grm world``, which loads the same config as ``grm run``),
``grm run`` (config, ``data.source`` folders, ``model.base``: all refused before Prefect starts) and model folders.

Each case asserts: exit code 2, the message names the file (and line/row) and the field or config key, no
traceback, and nothing left behind (the folder the command ran in holds exactly the files the case wrote: no
output file, no temp file, no ``.prefect``/``mlruns``/``data``). No case trains or samples a model.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grm_cli.app import app

# The corpus loads the tiny model fixture (a real model folder) for the model-folder cases: slow by the guard.
pytestmark = pytest.mark.slow

runner = CliRunner()

# A valid two-response world item (the world teacher can judge it) and a valid single-response one.
GOOD = {"id": "w/1", "query": "2 + 3 ?", "responses": ["5", "it is 6"], "best": 0}
GOOD1 = {"id": "w/2", "query": "4 + 4 ?", "responses": ["8"], "label": 1}
WORLD = ["--set", "world.n_train=4", "--set", "world.n_val=2", "--set", "world.n_test=4"]
NEEDS_CONFIG_RULE = "needs the config helper's load-time rule (src/grm/config/)"


def jl(*rows: object) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


@dataclass
class Env:
    """What a case builds in: the case's folder and a pristine tiny model folder to copy."""

    tmp: Path
    model: Path

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def items(self, *rows: object, name: str = "items.jsonl") -> Path:
        return self.write(name, jl(*rows))

    def model_copy(self, mutate: Callable[[Path], None]) -> Path:
        dst = self.tmp / "model"
        shutil.copytree(self.model, dst)
        mutate(dst)
        return dst

    def score(self, inp: Path | str, *extra: str, model: str = "world-teacher") -> list[str]:
        return [
            "score",
            "--model",
            model,
            "--input",
            str(inp),
            "--output",
            str(self.tmp / "out.jsonl"),
            "--template",
            "compact",
            "--k",
            "2",
            *extra,
        ]

    def eval_scores(self, scores: Path | str, bench: Path | None = None, *extra: str) -> list[str]:
        bench = bench or self.items(GOOD, GOOD1, name="bench.jsonl")
        return [
            "eval",
            "--benchmark",
            str(bench),
            "--scores-file",
            str(scores),
            "--output",
            str(self.tmp / "rep"),
            *extra,
        ]

    def world(self, *extra: str) -> list[str]:
        return ["world", "--output", str(self.tmp / "world"), *extra, *WORLD]

    def run(self, *extra: str) -> list[str]:
        return ["run", "--project-dir", str(self.tmp / "proj"), *extra]

    def source(self, **splits: str) -> Path:
        """A data.source folder with the given split files (default: a valid file for each missing split)."""
        folder = self.tmp / "src"
        for split in ("train", "val", "test"):
            content = splits.get(split, jl(GOOD, GOOD1))
            if content is not None:
                self.write(f"src/{split}.jsonl", content)
        self.write("src/general.jsonl", '{"prompt": "q", "completion": "a"}\n')  # the default mix needs it
        return folder


REAL = {"id": "r/1", "query": "Is a refund possible after 30 days?", "responses": ["Yes.", "No."], "best": 0}


def _landing(e: Env, broken: str) -> Path:
    """A landing folder: a good drop 2026-12-07 and the drop ``broken`` without its test.jsonl."""
    e.write("inc/general.jsonl", '{"prompt": "q", "completion": "a"}\n')
    for drop, splits in (("2026-12-07", ("train", "val", "test")), (broken, ("train", "val"))):
        for i, split in enumerate(splits):
            e.write(f"inc/{drop}/{split}.jsonl", jl(dict(GOOD, id=f"{drop}/{split}", query=f"{i} + {len(drop)} ?")))
    return e.tmp / "inc"


# A case: (env) -> (argv, fragments the message must hold). "{tmp}" in a fragment is the case folder.
Build = Callable[[Env], tuple[list[str], list[str]]]


def _truncate(name: str, keep: float) -> Callable[[Path], None]:
    def cut(d: Path) -> None:
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[: int(len(data) * keep)])

    return cut


def _remove(*names: str) -> Callable[[Path], None]:
    def rm(d: Path) -> None:
        for n in names:
            (d / n).unlink()

    return rm


def _scribble(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda d: (d / name).write_bytes(data)


def _cfg(e: Env, text: str | bytes, name: str = "c.yaml") -> Path:
    return e.write(name, text)


def _weights(edit: Callable[[dict], dict]) -> Callable[[Path], None]:
    """Rewrite model.safetensors through ``edit(tensors) -> tensors``."""

    def rewrite(d: Path) -> None:
        from safetensors.torch import load_file, save_file

        tensors = load_file(d / "model.safetensors")
        save_file(edit(tensors), d / "model.safetensors", metadata={"format": "pt"})

    return rewrite


def _drop_mlp(t: dict) -> dict:
    t.pop(next(k for k in sorted(t) if "mlp" in k))
    return t


def _nan_first(t: dict) -> dict:
    next(iter(t.values()))[0, 0] = float("nan")
    return t


def _int8(t: dict) -> dict:
    import torch

    return {k: (v * 100).to(torch.int8) for k, v in t.items()}


def _config(**changes: object) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        cfg = json.loads((d / "config.json").read_text())
        cfg.update(changes)
        (d / "config.json").write_text(json.dumps(cfg))

    return edit


def _gpt2_config(d: Path) -> None:
    vocab = json.loads((d / "config.json").read_text())["vocab_size"]
    gpt2 = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 32, "n_layer": 1, "n_head": 2}
    (d / "config.json").write_text(json.dumps({**gpt2, "vocab_size": vocab, "bos_token_id": 0, "eos_token_id": 0}))


def _fifo_weights(d: Path) -> None:
    (d / "model.safetensors").unlink()
    os.mkfifo(d / "model.safetensors")


def _general(e: Env, row: str) -> Path:
    """A data.source folder whose general.jsonl holds ``row`` (and nothing else)."""
    folder = e.source()
    e.write("src/general.jsonl", row + "\n")
    return folder


def _fifo(e: Env, name: str) -> Path:
    os.mkfifo(e.tmp / name)
    return e.tmp / name


def _gsm8k_cut(e: Env) -> Path:
    """A benchdata folder whose gsm8k file holds 3 rows, the last cut in half (a copy that stopped early)."""
    import tarfile

    with tarfile.open(Path(__file__).parents[2] / "benchdata" / "gsm8k.tar.gz") as tar:
        member = tar.extractfile("gsm8k/example_model_solutions.jsonl")
        assert member is not None
        lines = member.read().decode().splitlines(keepends=True)[:3]
    e.write("bd/gsm8k/example_model_solutions.jsonl", "".join(lines)[: -len(lines[-1]) // 2])
    return e.tmp / "bd"


# a 400-byte YAML "billion laughs": seed is 9**8 (43 million) values once the aliases are expanded
ALIAS_BOMB = (
    "a0: &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
    + "".join(f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9))
    + "seed: *a8\n"
)


CASES: list[tuple[str, str, Build]] = [
    # ---------------- grm score --input: framing and encodings ----------------
    # the input file does not exist
    ("score", "missing-input", lambda e: (e.score(e.tmp / "nope.jsonl"), ["nope.jsonl", "no such", "grm world"])),
    # a folder given where a JSONL file is expected
    ("score", "input-is-folder", lambda e: (e.score(e.write("d/x", "") and e.tmp / "d"), ["/d:", "is a folder"])),
    # Latin-1 bytes (an accented letter) on line 2: not UTF-8, the byte offset and line are named
    (
        "score",
        "latin1",
        lambda e: (
            e.score(e.write("i.jsonl", (jl(GOOD) + '{"id": "caf\xe9"}\n').encode("latin1"))),
            ["i.jsonl:2:", "not valid UTF-8", "byte offset"],
        ),
    ),
    # UTF-16 with a BOM (Windows "Unicode" export)
    ("score", "utf16-bom", lambda e: (e.score(e.write("i.jsonl", jl(GOOD).encode("utf-16"))), ["i.jsonl", "UTF-16"])),
    # UTF-16 without a BOM (NUL every other byte)
    (
        "score",
        "utf16-no-bom",
        lambda e: (e.score(e.write("i.jsonl", jl(GOOD).encode("utf-16-le"))), ["i.jsonl", "UTF-16"]),
    ),
    # a gzip-compressed file under a .jsonl name
    ("score", "gzip", lambda e: (e.score(e.write("i.jsonl", gzip.compress(jl(GOOD).encode()))), ["i.jsonl", "gzip"])),
    # a lone surrogate escape in a response: not valid Unicode, cannot be written back
    (
        "score",
        "lone-surrogate",
        lambda e: (
            e.score(e.items(GOOD, '{"id": "x", "query": "q", "responses": ["\\ud800", "b"], "best": 0}')),
            ["items.jsonl:2:", "surrogate"],
        ),
    ),
    # a 200k-deep nested array (RecursionError in the parser)
    (
        "score",
        "deep-nesting",
        lambda e: (e.score(e.items("[" * 200_000 + "]" * 200_000)), ["items.jsonl:1:", "nested too deeply"]),
    ),
    # a 400-digit integer as 'best' (float() of it overflows)
    (
        "score",
        "huge-int",
        lambda e: (
            e.score(e.items('{"id": "x", "query": "q", "responses": ["a", "b"], "best": 1' + "0" * 400 + "}")),
            ["items.jsonl:1:", "401 digits"],
        ),
    ),
    # NaN in ratings (Python's json accepts it; the message used to claim "the maximum is at 0")
    (
        "score",
        "nan-rating",
        lambda e: (
            e.score(e.items('{"id": "x", "query": "q", "responses": ["a", "b"], "best": 0, "ratings": [NaN, 1]}')),
            ["items.jsonl:1:", "NaN"],
        ),
    ),
    # an Infinity literal in ratings
    (
        "score",
        "infinity-rating",
        lambda e: (
            e.score(
                e.items('{"id": "x", "query": "q", "responses": ["a", "b"], "best": 0, "ratings": [Infinity, 1]}')
            ),
            ["items.jsonl:1:", "Infinity"],
        ),
    ),
    # a number that overflows a float (1e400 would become inf)
    (
        "score",
        "float-overflow",
        lambda e: (
            e.score(e.items('{"id": "x", "query": "q", "responses": ["a", "b"], "best": 0, "ratings": [1e400, 1]}')),
            ["items.jsonl:1:", "overflows"],
        ),
    ),
    # an empty input file (used to "score 0 items, accuracy 0.000" with exit 0)
    ("score", "empty-file", lambda e: (e.score(e.write("i.jsonl", "\n\n")), ["i.jsonl", "no rows"])),
    # a NUL character (\u0000) inside a response
    (
        "score",
        "nul-in-text",
        lambda e: (
            e.score(e.items({**GOOD, "responses": ["a\u0000b", "c"]})),
            ["items.jsonl:1:", "responses[0]", "NUL"],
        ),
    ),
    # a truncated JSON line
    (
        "score",
        "invalid-json",
        lambda e: (e.score(e.items(GOOD, '{"id": "x", "query": ')), ["items.jsonl:2:", "<json>", "invalid JSON"]),
    ),
    # a JSON array where an object is expected
    ("score", "row-not-object", lambda e: (e.score(e.items([1, 2])), ["items.jsonl:1:", "<row>", "JSON object"])),
    # ---------------- grm score --input: row values ----------------
    # best out of range
    ("score", "best-out-of-range", lambda e: (e.score(e.items({**GOOD, "best": 5})), ["items.jsonl:1:", "best:"])),
    # the same id twice
    ("score", "duplicate-id", lambda e: (e.score(e.items(GOOD, GOOD)), ["items.jsonl:2:", "id:", "duplicate"])),
    # a misspelt field name
    ("score", "unknown-field", lambda e: (e.score(e.items({**GOOD, "respones": []})), ["items.jsonl:1:", "respones"])),
    # a 0/1 label on a two-response row
    ("score", "label-with-two", lambda e: (e.score(e.items({**GOOD, "label": 1})), ["items.jsonl:1:", "label:"])),
    # a chat transcript whose last turn is the assistant's (unusual role order)
    (
        "score",
        "last-turn-assistant",
        lambda e: (
            e.score(
                e.items({**GOOD, "query": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})
            ),
            ["items.jsonl:1:", "query", "user's turn"],
        ),
    ),
    # an unknown chat role
    (
        "score",
        "unknown-role",
        lambda e: (
            e.score(e.items({**GOOD, "query": [{"role": "bot", "content": "hi"}]})),
            ["items.jsonl:1:", "query[0].role"],
        ),
    ),
    # ratings whose maximum disagrees with best
    (
        "score",
        "ratings-vs-best",
        lambda e: (e.score(e.items({**GOOD, "ratings": [1, 9]})), ["items.jsonl:1:", "ratings:", "best = 0"]),
    ),
    # ---------------- grm score: rows valid for the loader that the world teacher cannot read ----------------
    # a line break inside a response (valid data; the world teacher reads compact prompts line by line)
    (
        "score",
        "teacher-newline",
        lambda e: (e.score(e.items({**GOOD, "responses": ["5", "it is\n6"]})), ["w/1", "responses[1]", "line break"]),
    ),
    # a chat transcript query for the world teacher
    (
        "score",
        "teacher-transcript",
        lambda e: (
            e.score(
                e.items(
                    {
                        **GOOD,
                        "query": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2 + 3 ?"}],
                    }
                )
            ),
            ["w/1", "query", "transcript"],
        ),
    ),
    # a query that is not from the embedded world
    (
        "score",
        "teacher-foreign-query",
        lambda e: (e.score(e.items({**GOOD, "query": "Write a poem"})), ["w/1", "not a query of the embedded world"]),
    ),
    # the paper's template with the world teacher (it reads the compact template only)
    (
        "score",
        "teacher-template",
        lambda e: (e.score(e.items(GOOD), "--template", "deepseek-grm"), ["template", "compact"]),
    ),
    # ---------------- grm score --output ----------------
    # the output path is an existing folder: refused before any work
    (
        "score",
        "output-is-folder",
        lambda e: (
            [
                "score",
                "--model",
                "world-teacher",
                "--input",
                str(e.items(GOOD)),
                "--output",
                str(e.write("o/keep", "x").parent),
            ],
            ["/o:", "output path is a folder"],
        ),
    ),
    # the output's parent is a file
    (
        "score",
        "output-parent-is-file",
        lambda e: (
            [
                "score",
                "--model",
                "world-teacher",
                "--input",
                str(e.items(GOOD)),
                "--output",
                str(e.write("f", "x") / "out.jsonl"),
            ],
            ["f/out.jsonl", "is a file"],
        ),
    ),
    # ---------------- model folders (grm score --model) ----------------
    # a model path that does not exist (used to say "Unknown sampler spec")
    (
        "model",
        "missing-folder",
        lambda e: (e.score(e.items(GOOD), model=str(e.tmp / "nomodel")), ["nomodel", "model folder does not exist"]),
    ),
    # a spec that is neither a path nor a known sampler form
    (
        "model",
        "unknown-spec",
        lambda e: (e.score(e.items(GOOD), model="gpt-five"), ["Unknown sampler spec 'gpt-five'", "world-teacher"]),
    ),
    # model.safetensors cut in half (used to be a bare SafetensorError without a path)
    (
        "model",
        "truncated-weights",
        lambda e: (
            e.score(e.items(GOOD), model=str(e.model_copy(_truncate("model.safetensors", 0.5)))),
            ["model", "model.safetensors is truncated"],
        ),
    ),
    # model.safetensors overwritten with garbage (its header length does not fit)
    (
        "model",
        "garbage-weights",
        lambda e: (
            e.score(e.items(GOOD), model=str(e.model_copy(_scribble("model.safetensors", b"\xff" * 64)))),
            ["model.safetensors", "header length"],
        ),
    ),
    # a weights file with a valid length prefix but a header that is not JSON
    (
        "model",
        "bad-header-json",
        lambda e: (
            e.score(
                e.items(GOOD),
                model=str(
                    e.model_copy(
                        _scribble("model.safetensors", (10).to_bytes(8, "little") + b"not json!!" + b"\0" * 16)
                    )
                ),
            ),
            ["model.safetensors", "header is not valid JSON"],
        ),
    ),
    # no tokenizer files (used to be a message about sentencepiece/tiktoken)
    (
        "model",
        "missing-tokenizer",
        lambda e: (
            e.score(e.items(GOOD), model=str(e.model_copy(_remove("tokenizer.json")))),
            ["model", "no tokenizer files"],
        ),
    ),
    # a truncated tokenizer.json
    (
        "model",
        "truncated-tokenizer",
        lambda e: (
            e.score(e.items(GOOD), model=str(e.model_copy(_truncate("tokenizer.json", 0.5)))),
            ["model", "tokenizer.json is not valid JSON"],
        ),
    ),
    # no config.json
    (
        "model",
        "missing-config",
        lambda e: (
            e.score(e.items(GOOD), model=str(e.model_copy(_remove("config.json")))),
            ["model", "no config.json"],
        ),
    ),
    # a corrupt config.json
    (
        "model",
        "corrupt-config",
        lambda e: (
            e.score(e.items(GOOD), model=str(e.model_copy(_scribble("config.json", b'{"model_type": ')))),
            ["model", "config.json is not valid JSON"],
        ),
    ),
    # pickle weights only (refused: loading them can run code)
    (
        "model",
        "pickle-only",
        lambda e: (
            e.score(
                e.items(GOOD),
                model=str(e.model_copy(lambda d: (d / "model.safetensors").rename(d / "pytorch_model.bin"))),
            ),
            ["No *.safetensors", "pytorch_model.bin"],
        ),
    ),
    # a file given as the model folder
    (
        "model",
        "model-is-file",
        lambda e: (
            e.score(e.items(GOOD), model=str(e.write("m.safetensors", "x"))),
            ["m.safetensors", "expected a model folder"],
        ),
    ),
    # ---------------- grm eval ----------------
    # a bad row in a --benchmark JSONL file
    (
        "eval",
        "benchmark-bad-row",
        lambda e: (
            e.eval_scores(
                e.write("s.jsonl", jl({"id": "w/1", "scores": [1, 2]})), e.items({**GOOD, "best": 2}, name="b.jsonl")
            ),
            ["b.jsonl:1:", "best:"],
        ),
    ),
    # a --benchmark JSONL file in Latin-1
    (
        "eval",
        "benchmark-latin1",
        lambda e: (
            e.eval_scores(
                e.write("s.jsonl", jl({"id": "w/1", "scores": [1, 2]})),
                e.write("b.jsonl", '{"id": "\xe9"}\n'.encode("latin1")),
            ),
            ["b.jsonl:1:", "not valid UTF-8"],
        ),
    ),
    # --scores-file does not exist
    ("eval", "scores-missing", lambda e: (e.eval_scores(e.tmp / "nope.jsonl"), ["nope.jsonl", "no such"])),
    # --scores-file with a NaN score
    (
        "eval",
        "scores-nan",
        lambda e: (e.eval_scores(e.write("s.jsonl", '{"id": "w/1", "scores": [NaN, 1]}\n')), ["s.jsonl:1:", "NaN"]),
    ),
    # an empty --scores-file
    ("eval", "scores-empty", lambda e: (e.eval_scores(e.write("s.jsonl", "")), ["s.jsonl", "no rows"])),
    # a --scores-file that is UTF-16
    (
        "eval",
        "scores-utf16",
        lambda e: (
            e.eval_scores(e.write("s.jsonl", jl({"id": "w/1", "scores": [1, 2]}).encode("utf-16"))),
            ["s.jsonl", "UTF-16"],
        ),
    ),
    # a --scores-file that is a folder
    ("eval", "scores-folder", lambda e: (e.eval_scores(e.write("sd/x", "") and e.tmp / "sd"), ["sd", "is a folder"])),
    # the same id twice in --scores-file
    (
        "eval",
        "scores-duplicate",
        lambda e: (
            e.eval_scores(e.write("s.jsonl", jl({"id": "w/1", "scores": [1, 2]}, {"id": "w/1", "scores": [1, 2]}))),
            ["s.jsonl:2:", "duplicate"],
        ),
    ),
    # --scores-file lacks an item of the benchmark
    (
        "eval",
        "scores-lack-item",
        lambda e: (e.eval_scores(e.write("s.jsonl", jl({"id": "w/1", "scores": [1, 2]}))), ["w/2"]),
    ),
    # --output is an existing file
    (
        "eval",
        "output-is-file",
        lambda e: (
            [
                "eval",
                "--benchmark",
                str(e.items(GOOD, GOOD1, name="b.jsonl")),
                "--scores-file",
                str(e.write("s.jsonl", jl({"id": "w/1", "scores": [1, 2]}, {"id": "w/2", "scores": [1]}))),
                "--output",
                str(e.write("rep", "x")),
            ],
            ["rep", "is a file"],
        ),
    ),
    # ---------------- config files (grm world loads the pipeline config exactly as grm run does) ----------------
    # a YAML syntax error: the file and line are named, not "<unicode string>"
    (
        "config",
        "yaml-syntax",
        lambda e: (
            e.world("--config", str(_cfg(e, "seed: 0\nrl:\n  beta: [1, 2\n"))),
            ["c.yaml:4:", "YAML syntax error"],
        ),
    ),
    # a tab used for indentation
    ("config", "yaml-tab", lambda e: (e.world("--config", str(_cfg(e, "rl:\n\tbeta: 1\n"))), ["c.yaml:2:", "\\t"])),
    # a key written twice (YAML keeps the last silently)
    (
        "config",
        "duplicate-key",
        lambda e: (
            e.world("--config", str(_cfg(e, "seed: 0\nrl:\n  beta: 1\n  beta: 2\n"))),
            ["c.yaml:4:", "duplicate key 'beta'"],
        ),
    ),
    # an empty config file (used to mean all defaults silently)
    ("config", "empty-config", lambda e: (e.world("--config", str(_cfg(e, "# todo\n"))), ["c.yaml", "empty"])),
    # a config that includes itself
    (
        "config",
        "include-self",
        lambda e: (e.world("--config", str(_cfg(e, "include: c.yaml\nseed: 0\n"))), ["c.yaml", "includes itself"]),
    ),
    # two configs that include each other
    (
        "config",
        "include-loop",
        lambda e: (
            e.world(
                "--config",
                str(
                    _cfg(e, "include: b.yaml\n")
                    and _cfg(e, "include: c.yaml\nseed: 1\n", "b.yaml")
                    and e.tmp / "c.yaml"
                ),
            ),
            ["c.yaml -> ", "b.yaml", "includes itself"],
        ),
    ),
    # an include that does not exist
    (
        "config",
        "include-missing",
        lambda e: (
            e.world("--config", str(_cfg(e, "include: base.yaml\nseed: 0\n"))),
            ["base.yaml", "no such", "included from"],
        ),
    ),
    # the config file does not exist
    ("config", "config-missing", lambda e: (e.world("--config", str(e.tmp / "nope.yaml")), ["nope.yaml", "no such"])),
    # a folder given as the config file
    (
        "config",
        "config-is-folder",
        lambda e: (e.world("--config", str(e.write("cd/x", "") and e.tmp / "cd")), ["cd", "is a folder"]),
    ),
    # a Latin-1 config file
    (
        "config",
        "config-latin1",
        lambda e: (
            e.world("--config", str(_cfg(e, "# caf\xe9\nseed: 0\n".encode("latin1")))),
            ["c.yaml:1:", "not valid UTF-8"],
        ),
    ),
    # an unknown key
    ("config", "unknown-key", lambda e: (e.world("--config", str(_cfg(e, "rl:\n  betta: 0.1\n"))), ["rl.betta"])),
    # a wrong type
    (
        "config",
        "wrong-type",
        lambda e: (e.world("--config", str(_cfg(e, "world:\n  seed: abc\n"))), ["world.seed", "integer"]),
    ),
    # a top level that is a list
    ("config", "top-level-list", lambda e: (e.world("--config", str(_cfg(e, "- seed\n"))), ["c.yaml", "mapping"])),
    # --set without '='
    ("config", "set-no-equals", lambda e: (e.world("--set", "world.seed"), ["world.seed", "section.key=value"])),
    # --set with a value that is not valid YAML
    ("config", "set-bad-yaml", lambda e: (e.world("--set", "world.seed=[1"), ["world.seed=[1", "not valid YAML"])),
    # --set on an unknown key
    ("config", "set-unknown-key", lambda e: (e.world("--set", "world.sede=1"), ["world.sede"])),
    # --set with an empty key part
    ("config", "set-empty-key", lambda e: (e.world("--set", "world..seed=1"), ["world..seed=1", "empty key"])),
    # ---------------- grm run: everything refused before Prefect, MLflow or DVC start ----------------
    # a config error in grm run (used to print a 37-100 line traceback through Prefect)
    (
        "run",
        "run-config-error",
        lambda e: (e.run("--config", str(_cfg(e, "seed: 0\nseed: 1\n"))), ["c.yaml:2:", "duplicate key 'seed'"]),
    ),
    # an unknown --set key in grm run
    (
        "run",
        "run-set-unknown",
        lambda e: (e.run("--config", str(_cfg(e, "seed: 0\n")), "--set", "rl.betta=1"), ["rl.betta"]),
    ),
    # data.source names a folder that does not exist
    (
        "run",
        "source-missing",
        lambda e: (
            e.run("--config", str(_cfg(e, "seed: 0\n")), "--set", f"data.source={e.tmp / 'nosrc'}"),
            ["nosrc", "data.source"],
        ),
    ),
    # data.source names a file
    (
        "run",
        "source-is-file",
        lambda e: (
            e.run("--config", str(_cfg(e, "seed: 0\n")), "--set", f"data.source={e.write('s.txt', 'x')}"),
            ["s.txt", "folder"],
        ),
    ),
    # a data.source folder without test.jsonl
    (
        "run",
        "source-lacks-split",
        lambda e: (
            e.run("--config", str(_cfg(e, "seed: 0\n")), "--set", f"data.source={e.source(test=None)}"),
            ["test.jsonl", "no such"],
        ),
    ),
    # a JSON error in a data.source split (used to reach GX as id=nan rows)
    (
        "run",
        "source-bad-json",
        lambda e: (
            e.run("--config", str(_cfg(e, "seed: 0\n")), "--set", f"data.source={e.source(val=jl(GOOD, '{oops'))}"),
            ["val.jsonl:2:", "<json>"],
        ),
    ),
    # an empty train split in data.source
    (
        "run",
        "source-empty-split",
        lambda e: (
            e.run("--config", str(_cfg(e, "seed: 0\n")), "--set", f"data.source={e.source(train='')}"),
            ["train.jsonl", "no rows"],
        ),
    ),
    # a landing folder whose newest drop is half-copied (test.jsonl missing): refused, not skipped
    (
        "run",
        "source-drop-half-copied",
        lambda e: (
            e.run("--config", str(_cfg(e, "seed: 0\n")), "--data", str(_landing(e, "2026-12-14"))),
            ["2026-12-14", "half-copied", "test.jsonl"],
        ),
    ),
    # real text with the default world teacher (used to be published to DVC, then fail at rft.sample)
    (
        "run",
        "source-text-world-teacher",
        lambda e: (
            e.run("--config", str(_cfg(e, "seed: 0\n")), "--set", f"data.source={e.source(train=jl(REAL))}"),
            ["train.jsonl:1", "model.teacher='world-teacher' cannot judge", "model.teacher=vllm:"],
        ),
    ),
    # model.base with truncated weights (used to pass model.base and fail in rft.train)
    (
        "run",
        "base-truncated",
        lambda e: (
            e.run(
                "--config",
                str(_cfg(e, "seed: 0\n")),
                "--set",
                f"model.base={e.model_copy(_truncate('model.safetensors', 0.7))}",
            ),
            ["model", "model.safetensors is truncated"],
        ),
    ),
    # model.base without a tokenizer
    (
        "run",
        "base-no-tokenizer",
        lambda e: (
            e.run(
                "--config", str(_cfg(e, "seed: 0\n")), "--set", f"model.base={e.model_copy(_remove('tokenizer.json'))}"
            ),
            ["model", "no tokenizer files"],
        ),
    ),
    # a local model.teacher folder that does not exist
    (
        "run",
        "teacher-missing",
        lambda e: (
            e.run("--config", str(_cfg(e, "seed: 0\n")), "--set", f"model.teacher={e.tmp / 'noteacher'}"),
            ["noteacher", "does not exist"],
        ),
    ),
    (
        "run",
        "benchdata-missing",  # eval.benchmarks need their local copies: refused before Prefect, not after training
        lambda e: (
            e.run("--config", str(_cfg(e, "seed: 0\n")), "--set", f"eval.benchdata={e.tmp / 'nobench'}"),
            ["eval.benchdata", "nobench", "eval.benchmarks=[]"],
        ),
    ),
    # ================ Reliability II (issue 28): each kind below was accepted, hung or crashed before ================
    # ---------------- outputs that clobber ----------------
    # a FIFO as --output: the atomic rename replaced the pipe by a regular file
    ("score", "output-fifo", lambda e: (e.score(e.items(GOOD), "--output", str(_fifo(e, "p"))), ["/p:", "FIFO"])),
    # --output equal to --input: the input was overwritten by the judgements
    (
        "score",
        "output-is-input",
        lambda e: (e.score(e.items(GOOD), "--output", str(e.tmp / "items.jsonl")), ["items.jsonl", "overwrite"]),
    ),
    # --output a symlink to --input
    (
        "score",
        "output-links-to-input",
        lambda e: (
            e.score(
                e.items(GOOD), "--output", str((e.tmp / "o.jsonl").symlink_to("items.jsonl") or e.tmp / "o.jsonl")
            ),
            ["o.jsonl", "overwrite the input"],
        ),
    ),
    # --model-name with path parts: the default report folder runs/eval/<name>-<time> escaped runs/
    (
        "eval",
        "model-name-traversal",
        lambda e: (
            e.eval_scores(e.write("s.jsonl", jl({"id": "w/1", "scores": [1, 2]})), None, "--model-name", "../../x"),
            ["--model-name", "'../../x'"],
        ),
    ),
    # data.data_dir=mlruns: DVC would version the live MLflow store
    (
        "run",
        "data-dir-mlruns",
        lambda e: (
            e.run("--config", str(_cfg(e, "seed: 0\n")), "--set", "data.data_dir=mlruns"),
            ["data.data_dir='mlruns'", "mlruns/ store"],
        ),
    ),
    # data.data_dir inside the data.source folder: the prepared splits land among the incoming ones
    (
        "run",
        "data-dir-in-source",
        lambda e: (
            e.run(
                "--config",
                str(_cfg(e, "seed: 0\n")),
                "--set",
                f"data.source={e.source()}",
                "--set",
                f"data.data_dir={e.tmp / 'src' / 'prepared'}",
            ),
            ["data.data_dir=", "inside it"],
        ),
    ),  # fmt: skip
    # ---------------- model folders that loaded with random or wrong weights ----------------
    # a tensor missing from the checkpoint (used to load it randomly initialised, with a warning)
    (
        "model",
        "missing-tensor",
        lambda e: (
            e.score(e.items(GOOD), "--k", "1", model=str(e.model_copy(_weights(_drop_mlp)))),
            ["model:", "not in the checkpoint", "mlp"],
        ),
    ),
    # config.json says 4 layers, the weights hold 2: layers 2 and 3 were random
    (
        "model",
        "layer-count-mismatch",
        lambda e: (
            e.score(e.items(GOOD), "--k", "1", model=str(e.model_copy(_config(num_hidden_layers=4)))),
            ["model:", "model.layers.2."],
        ),
    ),
    # llama weights under a gpt2 config: a whole random GPT-2
    (
        "model",
        "wrong-architecture",
        lambda e: (
            e.score(e.items(GOOD), "--k", "1", model=str(e.model_copy(_gpt2_config))),
            ["model:", "transformer.h.0", "fit no parameter"],
        ),
    ),
    # a GRM (causal LM) folder given as --meta-rm: a random classifier head
    (
        "model",
        "grm-as-meta-rm",
        lambda e: (
            e.score(e.items(GOOD), "--meta-rm", str(e.model), "--k", "2", model=str(e.model)),
            ["meta RM", "score.weight", "causal LM"],
        ),
    ),
    # a NaN in the weights: every score NaN
    (
        "model",
        "nan-weights",
        lambda e: (
            e.score(e.items(GOOD), "--k", "1", model=str(e.model_copy(_weights(_nan_first)))),
            ["model:", "NaN or infinite"],
        ),
    ),
    # int8 weights without a quantization_config: silently cast
    (
        "model",
        "int8-weights",
        lambda e: (
            e.score(e.items(GOOD), "--k", "1", model=str(e.model_copy(_weights(_int8)))),
            ["model:", "'I8'", "quantization_config"],
        ),
    ),
    # a FIFO named model.safetensors: loading hung for ever
    (
        "model",
        "fifo-weights",
        lambda e: (
            e.score(e.items(GOOD), "--k", "1", model=str(e.model_copy(_fifo_weights))),
            ["model:", "model.safetensors is not a regular file"],
        ),
    ),
    # ---------------- numbers ----------------
    ("score", "k-zero", lambda e: (e.score(e.items(GOOD), "--k", "0"), ["--k:", "at least 1"])),
    ("score", "k-negative", lambda e: (e.score(e.items(GOOD), "--k", "-3"), ["--k:", "-3"])),
    ("score", "temperature-nan", lambda e: (e.score(e.items(GOOD), "--temperature", "nan"), ["--temperature:"])),
    (
        "score",
        "max-new-tokens-zero",
        lambda e: (e.score(e.items(GOOD), "--max-new-tokens", "0"), ["--max-new-tokens"]),
    ),
    # --k-meta without a meta RM was ignored
    (
        "score",
        "k-meta-without-meta-rm",
        lambda e: (e.score(e.items(GOOD), "--k-meta", "1"), ["--k-meta:", "--meta-rm"]),
    ),
    # --k-meta above k was ignored
    (
        "score",
        "k-meta-above-k",
        lambda e: (e.score(e.items(GOOD), "--meta-rm", str(e.model), "--k-meta", "5"), ["--k-meta:", "1..2"]),
    ),
    (
        "eval",
        "eval-k-meta-without-meta-rm",
        lambda e: (
            [
                "eval",
                "--benchmark",
                str(e.items(GOOD, name="b.jsonl")),
                "--model",
                "world-teacher",
                "--k-meta",
                "2",
                "--output",
                str(e.tmp / "rep"),
            ],
            ["--k-meta:", "--meta-rm"],
        ),
    ),  # fmt: skip
    ("config", "lr-negative", lambda e: (e.world("--set", "rl.learning_rate=-1e-4"), ["rl.learning_rate", "> 0"])),
    ("config", "lr-nan", lambda e: (e.world("--set", "rl.learning_rate=.nan"), ["rl.learning_rate", "finite"])),
    ("config", "epsilon-inf", lambda e: (e.world("--set", "rl.epsilon=.inf"), ["rl.epsilon", "finite"])),
    ("config", "beta-nan", lambda e: (e.world("--set", "rl.beta=.nan"), ["rl.beta", "finite"])),
    ("config", "eval-temperature-nan", lambda e: (e.world("--set", "eval.temperature=.nan"), ["eval.temperature"])),
    ("config", "rope-theta-zero", lambda e: (e.world("--set", "model.tiny.rope_theta=0"), ["model.tiny.rope_theta"])),
    # registry.margin=-.inf promoted an equal model; a negative one promotes a worse model
    ("config", "margin-minus-inf", lambda e: (e.world("--set", "registry.margin=-.inf"), ["registry.margin"])),
    ("config", "margin-negative", lambda e: (e.world("--set", "registry.margin=-0.1"), ["registry.margin", ">= 0"])),
    # a 30-digit integer: world generation hung
    (
        "config",
        "config-huge-int",
        lambda e: (e.world("--set", "world.n_entities=" + "9" * 30), ["world.n_entities", "range"]),
    ),
    # YAML 1.1: a leading zero is octal (seed: 010 was 8)
    ("config", "yaml-octal", lambda e: (e.world("--config", str(_cfg(e, "seed: 010\n"))), ["c.yaml:1:", "octal"])),
    # YAML 1.1: base 60 (max_steps: 1:30 was 90)
    (
        "config",
        "yaml-sexagesimal",
        lambda e: (e.world("--config", str(_cfg(e, "rl:\n  max_steps: 1:30\n"))), ["c.yaml:2:", "base 60"]),
    ),
    ("config", "set-underscore-int", lambda e: (e.world("--set", "seed=1_000"), ["seed=1_000", "underscores"])),
    # an alias bomb: a 400-byte file gave a 254 MB error message
    ("config", "alias-bomb", lambda e: (e.world("--config", str(_cfg(e, ALIAS_BOMB))), ["c.yaml", "aliases"])),
    # ---------------- data ----------------
    # a key twice in one JSON object: the last won silently
    (
        "score",
        "json-duplicate-key",
        lambda e: (
            e.score(e.items('{"id": "x", "query": "q", "responses": ["a", "b"], "best": 0, "best": 1}')),
            ["items.jsonl:1:", "'best' appears twice"],
        ),
    ),
    # a response that is only a zero-width space (or a BOM) passed "non-empty"
    (
        "score",
        "zero-width-only-response",
        lambda e: (e.score(e.items({**GOOD, "responses": ["\u200b", "b"]})), ["items.jsonl:1:", "responses[0]"]),
    ),
    (
        "score",
        "bom-only-query",
        lambda e: (e.score(e.items({**GOOD, "query": "\ufeff \u2060"})), ["items.jsonl:1:", "query:", "invisible"]),
    ),
    # ids that differ only by a trailing space, a full-width letter or a zero-width character were distinct items
    (
        "score",
        "id-trailing-space",
        lambda e: (e.score(e.items(GOOD, {**GOOD, "id": "w/1 "})), ["items.jsonl:2:", "duplicate", "first on line 1"]),
    ),
    (
        "score",
        "id-fullwidth",
        lambda e: (e.score(e.items(GOOD, {**GOOD, "id": "\uff57/1"})), ["items.jsonl:2:", "duplicate", "NFKC"]),
    ),
    (
        "score",
        "id-zero-width",
        lambda e: (e.score(e.items(GOOD, {**GOOD, "id": "w/\u200b1"})), ["items.jsonl:2:", "duplicate"]),
    ),
    # an id with a Cyrillic letter for its Latin look-alike ("ԝ" U+051D, "о" U+043E) was a distinct item
    (
        "score",
        "id-cyrillic-lookalike",
        lambda e: (
            e.score(e.items({**GOOD, "id": "w\u043erld/1"}, {**GOOD, "id": "\u051dorld/1"})),
            ["items.jsonl:2:", "duplicate", "look-alike"],
        ),
    ),
    # a broken general.jsonl passed preflight, was published, then failed at rft.train
    (
        "run",
        "general-bad-row",
        lambda e: (
            e.run(
                "--set",
                "data.source=" + str(_general(e, json.dumps({"prompt": "q", "completion": ""}))),
                "--set",
                f"model.base={e.model}",
            ),
            ["general.jsonl:1:", "completion"],
        ),
    ),  # fmt: skip
    (
        "run",
        "general-empty",
        lambda e: (
            e.run("--set", f"data.source={_general(e, '')}", "--set", f"model.base={e.model}"),
            ["general.jsonl", "no rows", "rft.general_ratio"],
        ),
    ),
    # a benchmark file cut in half: the cut row was skipped with one warning, the rest silently missing
    (
        "eval",
        "benchmark-truncated",
        lambda e: (
            [
                "eval",
                "--benchmark",
                "gsm8k-pairs",
                "--benchdata",
                str(_gsm8k_cut(e)),
                "--scores-file",
                str(e.write("s.jsonl", jl({"id": "x", "scores": [1, 2]}))),
                "--output",
                str(e.tmp / "rep"),
            ],
            ["example_model_solutions.jsonl:3:", "truncated"],
        ),
    ),  # fmt: skip
]

# Config values accepted today with a wrong effect; the rule is the config helper's (src/grm/config/).
CONFIG_RULE_CASES: list[tuple[str, str, Build]] = [
    # eval.limit=-5 evaluated 35 of 40 items  # needs the config helper's rule
    ("config", "eval-limit-negative", lambda e: (e.world("--set", "eval.limit=-5"), ["eval.limit"])),
    # sampling.num_threads=0 failed deep in RL without naming the key  # needs the config helper's rule
    ("config", "num-threads-zero", lambda e: (e.world("--set", "sampling.num_threads=0"), ["sampling.num_threads"])),
]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def no_prefect(monkeypatch):
    """``grm run`` must refuse bad input before it imports tasks/flows: a fake ``tasks`` fails loudly if it does."""
    fake = types.ModuleType("tasks")

    def boom(*args, **kwargs):
        raise AssertionError("grm run reached Prefect with a bad input")

    fake.prefect_env = types.SimpleNamespace(configure_defaults=boom)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tasks", fake)
    monkeypatch.setitem(sys.modules, "tasks.prefect_env", fake.prefect_env)


def _check(case: Build, tmp_path: Path, tiny_model_dir: Path) -> None:
    env = Env(tmp_path / "case", tiny_model_dir)
    env.tmp.mkdir()
    argv, fragments = case(env)
    before = _tree(env.tmp)
    res = runner.invoke(app, argv)
    message = res.stderr
    assert res.exit_code == 2, f"exit {res.exit_code}: {res.output}\n{res.exception!r}"
    assert "Traceback" not in res.output and message.startswith("error: "), res.output
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert _tree(env.tmp) == before, "the failed command left files behind"


@pytest.mark.parametrize(("entry", "kind", "case"), CASES, ids=[f"{e}:{k}" for e, k, _ in CASES])
def test_bad_input_is_a_clear_error_and_leaves_nothing(entry, kind, case, tmp_path, tiny_model_dir, no_prefect):
    _check(case, tmp_path, tiny_model_dir)


@pytest.mark.parametrize(
    ("entry", "kind", "case"), CONFIG_RULE_CASES, ids=[f"{e}:{k}" for e, k, _ in CONFIG_RULE_CASES]
)
def test_config_value_rules(entry, kind, case, tmp_path, tiny_model_dir):
    _check(case, tmp_path, tiny_model_dir)


def test_corpus_size():
    """The issue's bar: at least 40 kinds of bad input."""
    assert len({k for _, k, _ in CASES + CONFIG_RULE_CASES}) == len(CASES + CONFIG_RULE_CASES) >= 40


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n", encoding="utf-8")
    args = ["score", "--model", "world-teacher", "--input", str(bad), "--output", str(tmp_path / "o.jsonl")]
    res = runner.invoke(app, ["--debug", *args])
    assert res.exit_code != 2 and res.exception is not None and "bad.jsonl:1:" in str(res.exception)
    res = runner.invoke(app, args, env={"GRM_DEBUG": "1"})
    assert res.exception is not None and not isinstance(res.exception, SystemExit)


def test_a_bug_is_not_dressed_up_as_a_user_error(tmp_path, monkeypatch):
    good = tmp_path / "good.jsonl"
    good.write_text(jl(GOOD), encoding="utf-8")
    monkeypatch.setattr("grm.method.judging.judge_items", lambda *a, **k: 1 / 0)
    res = runner.invoke(
        app,
        [
            "score",
            "--model",
            "world-teacher",
            "--input",
            str(good),
            "--output",
            str(tmp_path / "o.jsonl"),
            "--template",
            "compact",
        ],
    )
    assert isinstance(res.exception, ZeroDivisionError) and res.exit_code == 1


def test_the_corpus_baselines_are_valid(tmp_path, tiny_model_dir):
    """Each case breaks one thing: the unbroken inputs it starts from are accepted."""
    from grm.model_files import check_model_dir
    from grm.plan import load_pipeline
    from grm.preflight import check_run_inputs

    env = Env(tmp_path, tiny_model_dir)
    res = runner.invoke(app, env.score(env.items(GOOD, GOOD1)))
    assert res.exit_code == 0 and (tmp_path / "out.jsonl").exists(), res.output
    scores = env.write("s.jsonl", jl({"id": "w/1", "scores": [1, 2]}, {"id": "w/2", "scores": [1]}))
    res = runner.invoke(app, env.eval_scores(scores))
    assert res.exit_code == 0 and (tmp_path / "rep" / "metrics.json").exists(), res.output
    assert check_model_dir(env.model_copy(lambda d: None)) == tmp_path / "model"
    overrides = [f"data.source={env.source()}", f"model.base={tmp_path / 'model'}", "eval.benchmarks=[]"]
    check_run_inputs(load_pipeline([], overrides), tmp_path)
