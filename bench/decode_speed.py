"""Benchmark: the HF sampler's achieved FLOP rate vs a plain matmul of the same shapes, on 1 and 2 CPU threads.

Builds the embedded tiny Llama (``bench/sampling.py``'s ``build_model``) and, for each shape preset and thread
count, in one process and side by side, times:

* naive: one sample at a time (old loop, ``generate_naive``) -- bench preset, first thread count only (slow);
* no sharing: all rows in one batch, each row prefilled separately (old loop) -- bench preset only;
* hf: shared prefill, the model's forward with a ``DynamicCache`` every step (``decode="hf"``, the old default);
* static: shared prefill, ``LlamaDecoder`` (``decode="static"``, the new default);
* matmul: the decode step's weight matmuls (q, k, v, o, gate, up, down per layer; the LM head) as ``F.linear`` on
  ``prompts x k`` rows with random fp32 inputs -- the hardware's rate for those shapes.

FLOPs are counted by ``grm.sampling.flops.generation_flops`` (weight matmuls + attention; prefill included);
``% matmul`` is the sampler's rate over the matmul rate measured right after it (with ``--repeats``: the best wall
and the best matmul rate over interleaved runs, for a busy machine). EOS is ignored (fixed length).

Presets: ``bench`` = 16 prompts x 48 tokens, k = 8, 64 new tokens; ``pipeline`` = the default pipeline's sampling
batches: 256 prompts (``sampling.batch_size``) x ~46 tokens (a compact judge prompt), k = 8 (eval k_max and
``meta.grm_samples``), 50 new tokens (``sampling.max_new_tokens``).

Usage::

    .venv/bin/python bench/decode_speed.py [--presets bench,pipeline] [--threads 1,2] [--temperature 1.0]
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

PRESETS = {
    "bench": {"prompts": 16, "prompt_tokens": 48, "k": 8, "new_tokens": 64, "baselines": True},
    "pipeline": {"prompts": 256, "prompt_tokens": 46, "k": 8, "new_tokens": 50, "baselines": False},
}


def matmul_rate(shape, rows: int, min_seconds: float = 1.0) -> float:
    """FLOP/s of the decode step's weight matmuls on ``rows`` rows (fp32, current torch threads)."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    mats = [(torch.randn(rows, a, generator=gen), torch.randn(b, a, generator=gen)) for a, b in shape.layer_linears()]
    head = (torch.randn(rows, shape.hidden, generator=gen), torch.randn(shape.vocab, shape.hidden, generator=gen))

    def once() -> None:
        for _ in range(shape.layers):
            for x, w in mats:
                F.linear(x, w)
        F.linear(*head)

    with torch.inference_mode():
        once()
        reps, start = 0, time.perf_counter()
        while True:
            once()
            reps += 1
            wall = time.perf_counter() - start
            if wall >= min_seconds:
                break
    return reps * rows * shape.linear_flops() / wall


def timed(run: Callable[..., object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="bench,pipeline", help=f"comma list of {sorted(PRESETS)}")
    parser.add_argument("--threads", default="1,2", help="comma list of torch CPU thread counts")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="runs per method (interleaved); best wall, best matmul")
    parser.add_argument(
        "--methods", default="naive,sharing,hf,static", help="comma list of naive, sharing (no sharing), hf, static"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch
    from sampling import build_model, make_prompts

    from grm.sampling.flops import LlamaShape, generation_flops
    from grm.sampling.hf import HFSampler

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = sorted(set(presets) - set(PRESETS))
    if unknown:
        parser.error(f"--presets: unknown {unknown}; use {sorted(PRESETS)}")
    threads = [int(t) for t in args.threads.split(",")]
    keys = {"naive": "naive", "sharing": "no prefill sharing", "hf": "decode=hf", "static": "decode=static"}
    wanted = [keys[m.strip()] for m in args.methods.split(",") if m.strip()]
    print("$ " + shlex.join([".venv/bin/python", "bench/decode_speed.py", *sys.argv[1:]]))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, model_desc = build_model(Path(tmp))
        samplers = {
            mode: HFSampler(model_dir, progress=False, ignore_eos=True, decode=mode, batch_size=256)
            for mode in ("hf", "static")
        }
        shape = LlamaShape.from_config(samplers["static"].model.config)
        print(f"\nmodel: {model_desc}; {shape}; temperature {args.temperature}, EOS ignored\n")
        print("| preset | threads | method | rows | wall s | generated tok/s | GFLOP/s | matmul GFLOP/s | % matmul |")
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for name in presets:
            cfg = PRESETS[name]
            prompts = make_prompts(samplers["hf"].tokenizer, cfg["prompts"], cfg["prompt_tokens"], args.seed)
            lengths = [len(samplers["hf"].tokenizer(p)["input_ids"]) for p in prompts]
            k, new, rows = cfg["k"], cfg["new_tokens"], cfg["prompts"] * cfg["k"]
            gen = (prompts, k, args.temperature, new, args.seed)
            methods: list[tuple[str, bool, Callable[..., object]]] = []
            if cfg["baselines"]:
                methods.append(
                    ("naive, one sample at a time (hf)", False, lambda g=gen: samplers["hf"].generate_naive(*g))
                )
                methods.append(
                    (
                        "batched, no prefill sharing (hf)",
                        False,
                        lambda g=gen: samplers["hf"].generate_with_details(*g, share_prefill=False),
                    )
                )
            methods.append(("shared prefill, decode=hf (old)", True, lambda g=gen: samplers["hf"].generate(*g)))
            methods.append(
                ("shared prefill, decode=static (new)", True, lambda g=gen: samplers["static"].generate(*g))
            )
            for n_threads in threads:
                torch.set_num_threads(n_threads)
                for sampler in samplers.values():
                    sampler.generate(prompts[:2], 2, args.temperature, 4, seed=0)  # warm-up
                todo = [
                    (label, shared, run)
                    for label, shared, run in methods
                    if any(key in label for key in wanted) and (n_threads == threads[0] or "naive" not in label)
                ]  # naive, the slowest baseline, on the first thread count only
                best: dict[str, tuple[float, float]] = {}
                for _ in range(args.repeats):  # interleaved, so that load changes hit every method alike
                    for label, _shared, run in todo:
                        for sampler in samplers.values():
                            sampler.stats.reset()
                        wall = timed(run)
                        generated = sum(s.stats.tokens_generated for s in samplers.values())
                        if generated != len(prompts) * k * new:
                            raise RuntimeError(
                                f"{label}: generated {generated} tokens, expected {len(prompts) * k * new}"
                            )
                        ref = matmul_rate(shape, rows)
                        old_wall, old_ref = best.get(label, (float("inf"), 0.0))
                        best[label] = (min(wall, old_wall), max(ref, old_ref))
                for label, shared, _run in todo:
                    wall, ref = best[label]
                    generated = len(prompts) * k * new
                    flops = generation_flops(shape, lengths, k, new, shared_prefill=shared)
                    print(
                        f"| {name} ({cfg['prompts']}x{sum(lengths) / len(lengths):.0f} tok, k={k}, {new} new) | "
                        f"{n_threads} | {label} | {rows} | {wall:.2f} | {generated / wall:,.0f} | "
                        f"{flops / wall / 1e9:.2f} | {ref / 1e9:.1f} | {100 * flops / wall / ref:.0f}% |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
