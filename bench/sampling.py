"""Benchmark: k samples per prompt with one shared prefill (batched) vs one sample at a time.

Builds the embedded tiny Llama (``grm.world.model``; Llama hidden 128, 4 layers, 4 heads, MLP 384, word-level
tokenizer) in a temp dir -- or an equivalent local one if ``grm.world`` is unavailable -- and samples ``k`` completions
of a fixed length (EOS ignored) for the same prompts three ways:

* naive: one sample at a time (a prefill of the prompt for every sample, batch of one row);
* batched, no sharing: all prompts x k rows in one batch, each row prefilled separately;
* batched, shared prefill, old loop: each prompt prefilled once, KV cache repeated k times (``decode="hf"``);
* batched, shared prefill (``HFSampler.generate``, ``decode="static"``): prompt KV kept once, static cache.

``bench/decode_speed.py`` puts these rates next to the matmul rate of the same shapes.

Usage::

    .venv/bin/python bench/sampling.py [--prompts 16] [--k 8] [--prompt-tokens 48] [--new-tokens 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import logging
import random
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]


def build_model(tmp: Path) -> tuple[Path, str]:
    """Build the embedded default tiny model if ``grm.world`` is there, else a same-shape local one."""
    try:
        from grm.world.generator import WorldConfig
        from grm.world.model import ModelTinyConfig, build_tiny_model
        from grm.world.tokenizer import build_tokenizer
    except ImportError:
        from tests.helpers.tiny_model import build_tiny_model as build_local

        path = build_local(
            tmp / "model",
            hidden_size=128,
            num_layers=4,
            num_heads=4,
            intermediate_size=384,
            vocab_size=600,
            max_position_embeddings=512,
        )
        return path, "tests.helpers.tiny_model (Llama 128x4, vocab 600)"
    tok_dir = build_tokenizer(WorldConfig(), tmp / "tokenizer")
    path = build_tiny_model(tok_dir, tmp / "model", ModelTinyConfig())
    return path, "grm.world.model default ModelTinyConfig (Llama 128x4, world vocabulary)"


def make_prompts(tokenizer, count: int, target_tokens: int, seed: int) -> list[str]:
    """``count`` prompts of random vocabulary words, each exactly ``target_tokens`` tokens (BOS included)."""
    specials = set(tokenizer.all_special_tokens)
    words = sorted({t.strip() for t in tokenizer.get_vocab() if t not in specials and t.strip().isalpha()})
    rng = random.Random(seed)
    prompts = []
    for _ in range(count):
        picked: list[str] = []
        while True:
            text = " ".join(picked)
            length = len(tokenizer(text)["input_ids"]) if picked else 1
            if length >= target_tokens:
                break
            picked.append(rng.choice(words))
        prompts.append(text)
    return prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--k", type=int, default=8, help="samples per prompt")
    parser.add_argument(
        "--prompt-tokens", type=int, default=48, help="prompt length; prompt + new tokens must fit the 128 context"
    )
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from grm.sampling.hf import HFSampler

    with tempfile.TemporaryDirectory() as tmp:
        model_dir, model_desc = build_model(Path(tmp))
        sampler = HFSampler(
            model_dir, num_threads=args.threads, batch_size=args.prompts, progress=False, ignore_eos=True
        )
        old = HFSampler(model_dir, batch_size=args.prompts, progress=False, ignore_eos=True, decode="hf")
        prompts = make_prompts(sampler.tokenizer, args.prompts, args.prompt_tokens, args.seed)
        lengths = [len(sampler.tokenizer(p)["input_ids"]) for p in prompts]
        k, new = args.k, args.new_tokens
        sampler.generate(prompts[:2], 2, args.temperature, 4, seed=0)  # warm-up
        old.generate(prompts[:2], 2, args.temperature, 4, seed=0)

        methods = {
            "naive: one sample at a time (old loop)": lambda: old.generate_naive(
                prompts, k, args.temperature, new, args.seed
            ),
            "batched, no prefill sharing (old loop)": lambda: old.generate_with_details(
                prompts, k, args.temperature, new, args.seed, share_prefill=False
            ),
            "batched, shared prefill, decode=hf (old loop)": lambda: old.generate(
                prompts, k, args.temperature, new, args.seed
            ),
            "batched, shared prefill (HFSampler.generate, decode=static)": lambda: sampler.generate(
                prompts, k, args.temperature, new, args.seed
            ),
        }
        rows = []
        for name, run in methods.items():
            sampler.stats.reset()
            old.stats.reset()
            start = time.perf_counter()
            run()
            wall = time.perf_counter() - start
            st = sampler.stats if "decode=static" in name else old.stats
            expected = len(prompts) * k * new
            if st.tokens_generated != expected:
                raise RuntimeError(f"{name}: generated {st.tokens_generated} tokens, expected {expected}")
            rows.append(
                (name, st.prefill_calls, st.sequences_prefilled, st.prompt_tokens_prefilled, st.tokens_generated, wall)
            )

    base_tps = rows[0][4] / rows[0][5]
    print("$ " + shlex.join([".venv/bin/python", "bench/sampling.py", *sys.argv[1:]]))
    print(
        f"\nmodel: {model_desc}; {len(prompts)} prompts x {sum(lengths) / len(lengths):.0f} prompt tokens, "
        f"k = {k} samples of {new} tokens (EOS ignored), temperature {args.temperature}, {args.threads} CPU thread(s)\n"
    )
    print(
        "| method | prefill forwards | sequences prefilled | prompt tokens prefilled per item | generated tokens | wall s | generated tok/s | speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, calls, seqs, ptoks, gen, wall in rows:
        tps = gen / wall
        print(
            f"| {name} | {calls} | {seqs} | {ptoks / len(prompts):.0f} | {gen} | {wall:.2f} | {tps:,.0f} | "
            f"{tps / base_tps:.1f}x |"
        )


if __name__ == "__main__":
    main()
