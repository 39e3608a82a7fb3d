"""Benchmark: time per training step of RFT (SFT), the meta RM and GRPO vs the matmul rate of the step's own shapes.

Builds the embedded tiny Llama (``model.tiny`` of the config: hidden 128, 4 layers, MLP 384 by default) and the
default recipe's data in a temp dir (the world's train items, rejective sampling from the world teacher, the RFT mix
of accepted trajectories + general examples, the meta-RM texts, the RL rows), then, for each thread count in one
process, trains with the pipeline's own functions and settings (``grm.training.sft.train_sft`` with
``rft.train``: batch 64, length groups 3, max_length 96; ``grm.training.meta_rm_train.train_meta_rm`` with ``meta_rm.train``;
``grm.training.grpo.train_grpo`` with ``rl``) for ``--warmup`` + ``--steps`` steps and times the last ``--steps``:

* **s/step**: wall time between two optimizer steps (a whole trainer cycle: data, forward, backward, clipping,
  optimizer, scheduler, logging, callbacks), split into parts by timers around the trainer's own methods
  (``get_batch_samples``, ``compute_loss``, ``accelerator.backward``, ``_clip_grad_norm``, the optimizer step,
  ``_maybe_log_save_evaluate``; GRPO also ``_prepare_inputs`` = rollout, with ``_generate`` inside it);
* **model FLOPs**: every forward the model ran in the window, recorded by forward hooks with its shape
  (``grm.sampling.flops.forward_flops``; a training forward counts x3 for its backward, ``training_flops``):
  weight matmuls + causal attention, padded tokens included (what the hardware computed); recomputation
  (activation checkpointing, TRL's fused LM head) is not counted;
* **matmul GFLOP/s**: the same forwards' weight matmuls (and, for training forwards, the two backward matmuls of
  each) as plain ``F.linear`` / ``mm`` on random fp32 tensors of the same row counts, on the same threads, timed
  right after the run: the rate this hardware gives those shapes. **% matmul** = achieved / matmul rate.

Usage::

    PYTHONPATH=src:. .venv/bin/python bench/train_speed.py [--threads 1,2] [--steps 20] [--grpo-steps 6]
        [--workloads sft,meta,grpo] [--rollouts 3] [--profile sft]

``--rollouts`` also times one GRPO step's rollouts both ways (``rollout_compare``): TRL's ``model.generate`` and
the project's static decode loop (``HFSampler``), whether ``rl.train`` could use the latter.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import shlex
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

TRAINER_PARTS = (
    ("get_batch_samples", "data"),
    ("_prepare_inputs", "rollout"),  # GRPO: generation + rewards + reference log-probs (inside training_step)
    ("_generate", "generate"),  # GRPO: inside rollout
    ("compute_loss", "forward+loss"),
    ("_clip_grad_norm", "clip"),
    ("_maybe_log_save_evaluate", "log"),
)


class Timers:
    """Inclusive seconds per named part, from wrappers around methods (instance attributes shadow the class's)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, obj: Any, attr: str, name: str) -> None:
        fn = getattr(obj, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start

        setattr(obj, attr, timed)

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


@dataclass
class Call:
    """One model forward: ``kind`` train (grad), prefill / decode (generate with a cache), score (no grad)."""

    kind: str
    rows: int
    length: int  # tokens per row computed (1 for a decode step)
    keys: int  # keys a decode step's query sees (cache + 1); 0 otherwise
    head_positions: int  # LM-head positions per row


@dataclass
class Recorder:
    """Step ends, part timers and the model forwards of one training run; ``window()`` keeps the timed steps."""

    warmup: int
    timers: Timers = field(default_factory=Timers)
    calls: list[Call] = field(default_factory=list)
    step_ends: list[float] = field(default_factory=list)
    marks: dict[str, Any] = field(default_factory=dict)
    optimizer_start: float = 0.0

    def step_end(self) -> None:
        self.step_ends.append(time.perf_counter())
        if len(self.step_ends) == self.warmup:  # the timed window starts here
            self.marks = {"seconds": dict(self.timers.seconds), "calls": len(self.calls)}

    def window(self) -> tuple[int, float, dict[str, float], list[Call]]:
        if len(self.step_ends) <= self.warmup or not self.marks:
            raise RuntimeError(f"only {len(self.step_ends)} steps ran; need more than --warmup={self.warmup}")
        steps = len(self.step_ends) - self.warmup
        wall = self.step_ends[-1] - self.step_ends[self.warmup - 1]
        parts = {k: v - self.marks["seconds"].get(k, 0.0) for k, v in self.timers.seconds.items()}
        return steps, wall, parts, self.calls[self.marks["calls"] :]

    def attach(self, model: Any, head: str) -> None:
        """Forward hooks on ``model`` recording each call's shape; ``head``: ``lm`` (a causal LM) or ``none``."""
        import torch

        def pre(module: Any, args: tuple, kwargs: dict) -> None:
            ids = kwargs.get("input_ids", args[0] if args else None)
            if ids is None:
                return
            rows, length = int(ids.shape[0]), int(ids.shape[1])
            cache = kwargs.get("cache", kwargs.get("past_key_values"))  # transformers 5 names it ``cache``
            past = int(cache.get_seq_length()) if cache is not None and hasattr(cache, "get_seq_length") else 0
            if torch.is_grad_enabled():
                kind = "train"
            elif cache is not None:
                kind = "decode" if past > 0 else "prefill"
            else:
                kind = "score"
            if head == "none":
                positions = 0
            elif kwargs.get("fused_lm_head"):
                positions = length - 1  # TRL's fused head on CPU scores every position but the last
            elif kwargs.get("logits_to_keep"):
                positions = min(length, int(kwargs["logits_to_keep"]))
            else:
                positions = length
            self.calls.append(Call(kind, rows, length, past + length if kind == "decode" else 0, positions))
            module._bench_start = time.perf_counter()

        def post(module: Any, args: tuple, kwargs: dict, output: Any) -> None:
            start = getattr(module, "_bench_start", None)
            if start is not None:
                self.timers.seconds["model forward"] += time.perf_counter() - start

        model.register_forward_pre_hook(pre, with_kwargs=True)
        model.register_forward_hook(post, with_kwargs=True)


def call_flops(shape: Any, c: Call) -> int:
    from grm.sampling.flops import forward_flops, training_flops

    if c.kind == "decode":
        per_row = shape.linear_flops(lm_head=False) + c.head_positions * 2 * shape.hidden * shape.vocab
        return c.rows * (per_row + shape.attention_flops(c.keys))
    fn = training_flops if c.kind == "train" else forward_flops
    return fn(shape, c.rows, c.length, c.head_positions)


def linear_flops(shape: Any, c: Call) -> int:
    """The weight matmuls' share of ``call_flops`` (what the matmul reference times)."""
    tokens = c.rows * c.length
    flops = tokens * shape.linear_flops(lm_head=False) + c.rows * c.head_positions * 2 * shape.hidden * shape.vocab
    return 3 * flops if c.kind == "train" else flops


class MatmulReference:
    """FLOP/s of the weight matmuls of a forward (+ its backward for ``train``) on ``tokens`` rows, measured on the
    current torch threads, cached per (kind, row bucket): rows are rounded on a x1.25 grid."""

    def __init__(self, shape: Any, min_seconds: float = 0.25):
        self.shape = shape
        self.min_seconds = min_seconds
        self.cache: dict[tuple[bool, bool, int], float] = {}

    def rate(self, train: bool, head: bool, tokens: int) -> float:
        bucket = max(1, round(1.25 ** round(math.log(max(tokens, 1), 1.25))))
        key = (train, head, bucket)
        if key not in self.cache:
            self.cache[key] = self._measure(train, head, bucket)
        return self.cache[key]

    def _measure(self, train: bool, head: bool, rows: int) -> float:
        import torch
        import torch.nn.functional as F

        s = self.shape
        gen = torch.Generator().manual_seed(0)
        dims = [*s.layer_linears() * s.layers, *([(s.hidden, s.vocab)] if head else [])]
        mats = {
            (a, b): (torch.randn(rows, a, generator=gen), torch.randn(b, a, generator=gen), torch.randn(rows, b))
            for a, b in set(dims)
        }

        def once() -> None:
            for a, b in dims:
                x, w, dy = mats[(a, b)]
                F.linear(x, w)
                if train:
                    torch.mm(dy, w)  # input gradient (rows x a)
                    torch.mm(dy.t(), x)  # weight gradient (b x a)

        flops = sum(2 * rows * a * b for a, b in dims) * (3 if train else 1)
        with torch.no_grad():
            once()
            best, total = float("inf"), 0.0
            while total < self.min_seconds:
                start = time.perf_counter()
                once()
                wall = time.perf_counter() - start
                best, total = min(best, wall), total + wall
        return flops / best

    def seconds(self, calls: list[Call]) -> float:
        """Matmul-only time of the calls' weight work at the measured rates."""
        total = 0.0
        for c in calls:
            tokens = c.rows * c.length
            total += linear_flops(self.shape, c) / self.rate(c.kind == "train", c.head_positions > 0, tokens)
        return total


# --- data ------------------------------------------------------------------------------------------------------


@dataclass
class BenchData:
    cfg: Any
    model_dir: Path
    sft_examples: list[dict[str, str]]
    meta_examples: list[dict[str, Any]]
    rl_rows: list[dict[str, Any]]
    general: list[dict[str, str]]


def build_data(tmp: Path, config: Path, overrides: list[str], n_items: int) -> BenchData:
    """The default recipe's model and data, built as the pipeline builds them (on ``n_items`` train items)."""
    from grm.plan import load_pipeline
    from grm.training import grpo, rft, spct
    from grm.world.generator import general_instruction_examples, generate_world

    cfg = load_pipeline([config], overrides)
    items = generate_world(cfg.world)["train"][:n_items]
    teacher = spct.teacher_sampler(cfg.model.teacher, None, cfg.world, None, cfg.rft.sampling.seed)
    sampled = rft.rejective_sample(items, teacher, cfg.rft.sampling)
    general = general_instruction_examples(cfg.world, seed=cfg.rft.train.seed)
    sft_examples = spct.rft_mix(sampled.accepted, general, cfg.rft.general_ratio, cfg.rft.train.seed)
    meta_examples = rft.examples_from_trajectories({it.id: it for it in items}, sampled.samples)
    rl_rows = grpo.build_rl_rows(items, cfg.rl.template, cfg.rl.seed)
    model_dir = spct.build_base_model("embedded", cfg.model.tiny, cfg.world, tmp / "base", cfg.model.seed)
    return BenchData(cfg, model_dir, sft_examples, meta_examples, rl_rows, general)


# --- runs ------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def patched(obj: Any, attr: str, value: Any) -> Iterator[None]:
    old = getattr(obj, attr)
    setattr(obj, attr, value)
    try:
        yield
    finally:
        setattr(obj, attr, old)


@contextlib.contextmanager
def instrument_trainer(module: Any, rec: Recorder) -> Iterator[None]:
    """Instrument the trainer ``module`` (``grm.training.sft`` / ``grpo``) builds: its ``use_progress_callback``
    call is the one place that receives the trainer before ``train()``."""
    from transformers import TrainerCallback

    original = module.use_progress_callback

    class StepClock(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, **kw):  # noqa: ANN001
            rec.optimizer_start = time.perf_counter()

        def on_optimizer_step(self, args, state, control, **kw):  # noqa: ANN001
            rec.timers.seconds["optimizer"] += time.perf_counter() - rec.optimizer_start

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            rec.step_end()

    def hook(trainer: Any, desc: str) -> None:
        original(trainer, desc)
        for attr, name in TRAINER_PARTS:
            if hasattr(trainer, attr):
                rec.timers.wrap(trainer, attr, name)
        rec.timers.wrap(trainer.accelerator, "backward", "backward")
        trainer.add_callback(StepClock())
        rec.attach(trainer.model, "lm")
        if getattr(trainer, "ref_model", None) is not None:
            rec.attach(trainer.ref_model, "lm")

    with patched(module, "use_progress_callback", hook):
        yield


def run_sft(data: BenchData, threads: int, steps: int, warmup: int, out: Path) -> Recorder:
    from grm.training import sft

    rec = Recorder(warmup)
    cfg = replace(data.cfg.rft.train, max_steps=warmup + steps, num_threads=threads, logging_steps=50)
    with instrument_trainer(sft, rec):
        sft.train_sft(data.model_dir, data.sft_examples, out, cfg)
    return rec


def run_grpo(data: BenchData, threads: int, steps: int, warmup: int, out: Path) -> Recorder:
    from grm.training import grpo

    rec = Recorder(warmup)
    cfg = replace(data.cfg.rl, max_steps=warmup + steps)
    general = data.general if cfg.general_coef > 0 else None
    with instrument_trainer(grpo, rec):
        grpo.train_grpo(data.model_dir, data.rl_rows, out, cfg, num_threads=threads, general=general)
    return rec


def run_meta(data: BenchData, threads: int, steps: int, warmup: int, out: Path) -> Recorder:
    """``train_meta_rm`` is a plain loop: its tokenizer, model, clipping and AdamW are wrapped while it runs."""
    import torch
    import transformers

    from grm import meta_rm
    from grm.training import meta_rm_train

    rec = Recorder(warmup)
    cfg = replace(data.cfg.meta_rm.train, steps=warmup + steps, val_fraction=0.0)
    make_tokenizer, load = meta_rm.meta_tokenizer, transformers.AutoModelForSequenceClassification.from_pretrained
    clip, adamw = torch.nn.utils.clip_grad_norm_, torch.optim.AdamW

    class TimedTokenizer:
        def __init__(self, tok: Any):
            self._tok = tok

        def __getattr__(self, name: str) -> Any:
            return getattr(self._tok, name)

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with rec.timers.part("data"):
                return self._tok(*args, **kwargs)

    def load_model(*args: Any, **kwargs: Any) -> Any:
        model = load(*args, **kwargs)
        rec.attach(model, "none")
        return model

    def timed_clip(*args: Any, **kwargs: Any) -> Any:
        with rec.timers.part("clip"):
            return clip(*args, **kwargs)

    class TimedAdamW(adamw):  # type: ignore[misc, valid-type]
        def step(self, *args: Any, **kwargs: Any) -> Any:
            with rec.timers.part("optimizer"):
                result = super().step(*args, **kwargs)
            rec.step_end()
            return result

    with (
        patched(meta_rm, "meta_tokenizer", lambda d: TimedTokenizer(make_tokenizer(d))),
        patched(transformers.AutoModelForSequenceClassification, "from_pretrained", load_model),
        patched(torch.nn.utils, "clip_grad_norm_", timed_clip),
        patched(torch.optim, "AdamW", TimedAdamW),
    ):
        meta_rm_train.train_meta_rm(data.model_dir, data.meta_examples, out, cfg, num_threads=threads)
    return rec


def rollout_compare(data: BenchData, threads: int, repeats: int) -> list[tuple[str, float, int]]:
    """One GRPO step's rollouts both ways, fixed length (EOS off), best of ``repeats``: TRL's path (each prompt
    repeated ``num_generations`` times, left-padded, ``model.generate`` with the sampling settings TRL passes) and
    ``HFSampler`` (shared prefill, ``decode="static"``). Returns ``(label, seconds, FLOPs)`` per path."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from grm.sampling.flops import LlamaShape, generation_flops
    from grm.sampling.hf import HFSampler

    rl = data.cfg.rl
    prompts = [r["prompt"] for r in data.rl_rows[: rl.prompts_per_step]]
    tokenizer = AutoTokenizer.from_pretrained(data.model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(data.model_dir, dtype=torch.float32).eval()
    shape = LlamaShape.from_config(model.config)
    repeated = [p for p in prompts for _ in range(rl.num_generations)]  # TRL's RepeatSampler order
    enc = tokenizer(repeated, return_tensors="pt", padding=True)
    gen_cfg = GenerationConfig(
        max_new_tokens=rl.max_completion_length, do_sample=True, temperature=rl.temperature, top_p=1.0, top_k=0,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=None,
        disable_compile=True,
    )  # fmt: skip
    sampler = HFSampler(data.model_dir, num_threads=threads, progress=False, ignore_eos=True, decode="static")
    torch.set_num_threads(threads)
    lengths = [len(tokenizer(p)["input_ids"]) for p in prompts]
    padded = [enc["input_ids"].shape[1]] * len(prompts)

    def hf() -> None:
        with torch.no_grad():
            model.generate(**enc, generation_config=gen_cfg)

    def static() -> None:
        sampler.generate(prompts, rl.num_generations, rl.temperature, rl.max_completion_length, seed=0)

    new = rl.max_completion_length
    paths = [
        ("TRL's path: model.generate, prompts repeated", hf,
         generation_flops(shape, padded, rl.num_generations, new, shared_prefill=False)),
        ("HFSampler decode=static, shared prefill", static,
         generation_flops(shape, lengths, rl.num_generations, new, shared_prefill=True)),
    ]  # fmt: skip
    best = {label: float("inf") for label, _, _ in paths}
    for _ in range(repeats):  # interleaved
        for label, run, _ in paths:
            start = time.perf_counter()
            run()
            best[label] = min(best[label], time.perf_counter() - start)
    return [(label, best[label], flops) for label, _, flops in paths]


RUNS: dict[str, Callable[..., Recorder]] = {"sft": run_sft, "meta": run_meta, "grpo": run_grpo}
LABELS = {
    "sft": "RFT (SFTTrainer, batch 64, 3 length groups)",
    "meta": "meta RM (plain loop, batch 32)",
    "grpo": "GRPO (16 prompts x 4 rollouts)",
}


# --- report ----------------------------------------------------------------------------------------------------


def phases(workload: str, parts: dict[str, float], calls: list[Call]) -> dict[str, tuple[float, list[Call]]]:
    """The step's phases, each with its seconds and its forwards: a whole step for SFT and the meta RM; for GRPO,
    ``generate`` (prefill + decode), the rest of the rollout (rewards, reference log-probs) and ``loss+backward``."""
    if workload != "grpo":
        return {"step": (-1.0, calls)}
    gen = [c for c in calls if c.kind in ("prefill", "decode")]
    score = [c for c in calls if c.kind == "score"]
    train = [c for c in calls if c.kind == "train"]
    return {
        "generate": (parts.get("generate", 0.0), gen),
        "rollout rest": (parts.get("rollout", 0.0) - parts.get("generate", 0.0), score),
        "loss+backward": (parts.get("forward+loss", 0.0) + parts.get("backward", 0.0), train),
    }


def breakdown(workload: str, wall: float, parts: dict[str, float]) -> list[tuple[str, float]]:
    """Exclusive shares of the step: the parts, with nested ones taken out, and the unaccounted rest."""
    p = dict(parts)
    forward = p.pop("model forward", 0.0)
    rows: list[tuple[str, float]] = []
    if workload == "grpo":
        rollout, gen = p.pop("rollout", 0.0), p.pop("generate", 0.0)
        rows += [("rollout: generate", gen), ("rollout: rewards + ref log-probs", rollout - gen)]
    if workload == "meta":
        rows.append(("model forward", forward))
        rows += [(k, p.pop(k, 0.0)) for k in ("data", "clip", "optimizer")]
        rows.append(("loss + backward + rest", wall - sum(v for _, v in rows)))
        return rows
    rows += [(k, p.pop(k, 0.0)) for k in ("data", "forward+loss", "backward", "clip", "optimizer", "log")]
    rows += sorted(p.items())
    rows.append(("rest (scheduler, callbacks, loop)", wall - sum(v for _, v in rows)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma list of torch CPU thread counts")
    parser.add_argument("--workloads", default="sft,meta,grpo", help=f"comma list of {sorted(RUNS)}")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (SFT, meta RM)")
    parser.add_argument("--grpo-steps", type=int, default=6, help="timed GRPO steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--items", type=int, default=1000, help="train items the data is built from")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--profile", default="", help="workload to run once more under torch.profiler (top ops)")
    parser.add_argument(
        "--rollouts",
        type=int,
        default=3,
        help="repeats of the GRPO rollout comparison (TRL's generate vs static); 0: off",
    )
    args = parser.parse_args()
    if args.warmup < 1:
        parser.error("--warmup must be >= 1 (the timed window starts at the end of a step)")
    logging.basicConfig(level=logging.WARNING)
    import torch

    from grm.sampling.flops import LlamaShape

    threads = [int(t) for t in args.threads.split(",")]
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = sorted(set(workloads) - set(RUNS))
    if unknown:
        parser.error(f"--workloads: unknown {unknown}; use {sorted(RUNS)}")
    print("$ " + shlex.join(["PYTHONPATH=src:.", ".venv/bin/python", "bench/train_speed.py", *sys.argv[1:]]))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = build_data(tmp, args.config, args.set, args.items)
        from transformers import AutoConfig

        shape = LlamaShape.from_config(AutoConfig.from_pretrained(data.model_dir))
        print(f"\nmodel: {shape}; torch {torch.__version__}; {len(data.sft_examples)} RFT examples, "
              f"{len(data.meta_examples)} meta-RM texts, {len(data.rl_rows)} RL rows\n")  # fmt: skip
        results = []
        for workload in workloads:
            steps = args.grpo_steps if workload == "grpo" else args.steps
            for n in threads:
                torch.set_num_threads(n)
                rec = RUNS[workload](data, n, steps, args.warmup, tmp / f"{workload}-{n}")
                torch.set_num_threads(n)  # the trainers set it too; the reference runs on the same count
                done, wall, parts, calls = rec.window()
                ref = MatmulReference(shape)
                results.append((workload, n, done, wall, parts, calls, ref))
        print("| workload | threads | phase | s/step | model GFLOP/step | GFLOP/s | matmul GFLOP/s | % matmul |")
        print("|---|---:|---|---:|---:|---:|---:|---:|")
        for workload, n, done, wall, parts, calls, ref in results:
            torch.set_num_threads(n)
            for phase, (seconds, phase_calls) in phases(workload, parts, calls).items():
                seconds = wall if seconds < 0 else seconds
                flops = sum(call_flops(shape, c) for c in phase_calls)
                lin = sum(linear_flops(shape, c) for c in phase_calls)
                mm_rate = lin / ref.seconds(phase_calls) if phase_calls else float("nan")
                rate = flops / seconds if seconds > 0 else float("nan")
                print(
                    f"| {LABELS[workload]} | {n} | {phase} | {seconds / done:.3f} | {flops / done / 1e9:.2f} | "
                    f"{rate / 1e9:.2f} | {mm_rate / 1e9:.1f} | {100 * rate / mm_rate:.0f}% |",
                    flush=True,
                )
            if workload == "grpo":
                print(f"| {LABELS[workload]} | {n} | whole step | {wall / done:.3f} | | | | |")
        print("\nWhere a step's time goes (exclusive seconds per step, share of the step):\n")
        print("| workload | threads | part | s/step | share |")
        print("|---|---:|---|---:|---:|")
        for workload, n, done, wall, parts, _calls, _ref in results:
            for name, seconds in breakdown(workload, wall, parts):
                print(f"| {workload} | {n} | {name} | {seconds / done:.4f} | {100 * seconds / wall:.1f}% |")
        if args.rollouts:
            rl = data.cfg.rl
            print(f"\nOne GRPO step's rollouts ({rl.prompts_per_step} prompts x {rl.num_generations}, "
                  f"{rl.max_completion_length} tokens, EOS off), best of {args.rollouts}:\n")  # fmt: skip
            print("| threads | path | s | generated tok/s | GFLOP/s | speed-up |")
            print("|---:|---|---:|---:|---:|---:|")
            tokens = rl.prompts_per_step * rl.num_generations * rl.max_completion_length
            for n in threads:
                rows = rollout_compare(data, n, args.rollouts)
                for label, seconds, flops in rows:
                    print(f"| {n} | {label} | {seconds:.3f} | {tokens / seconds:,.0f} | {flops / seconds / 1e9:.2f} | "
                          f"{rows[0][1] / seconds:.2f}x |")  # fmt: skip
        if args.profile:
            profile(data, args.profile, threads[-1], args.warmup, tmp)


def profile(data: BenchData, workload: str, threads: int, warmup: int, tmp: Path) -> None:
    """One more short run of ``workload`` under ``torch.profiler``: the ops with the most self CPU time."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.set_num_threads(threads)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        RUNS[workload](data, threads, 5, warmup, tmp / f"profile-{workload}")
    print(f"\ntorch.profiler, {workload}, {threads} threads, {warmup + 5} steps (setup included):\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))


if __name__ == "__main__":
    main()
