"""Benchmark (issue 27, item 4 / benchmark d): principles written per judgement (``default``) vs generated once per
prompt from the query alone (``principle_mode: query_only``) vs given by the caller (``caller``: the world's own
canonical principles of each query, an oracle rubric), on the world's test split.

Shape (IP-GRM's setting: GRPO rewards): each test item is one prompt group; one ``/v1/score`` request per group
judges each response alone (pointwise, ``k`` samples each, ``return_samples``), ``--clients`` groups in flight.
Accuracy: the response with the highest mean score is the item's best (ties share the credit). Reported per mode:
accuracy, p50 / p99 request latency, generations per group (judgements + principle generations, from ``/metrics``)
and generated characters per group (judgement texts + principles once per generation: a proxy for decode tokens).

Two servers per mode: ``grm serve --model world-teacher`` (the real CLI; the teacher costs ~nothing per text, so
latency is the server's own overhead) and, with ``--char-ms`` > 0, the same app over the teacher slowed to a modelled
decode cost: each sampler call sleeps ``char-ms`` x the longest text it generates (a batched decode takes as many
steps as its longest output). The second is a cost *model*, not a measured GPU.

Usage::

    .venv/bin/python bench/principles.py [--items 300] [--k 4] [--clients 8] [--char-ms 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import httpx  # noqa: E402

from bench.serve_load import free_port, metric, spawn_until_healthy, start_server  # noqa: E402

MODES = ("default", "query_only", "caller")

SLOW_SERVER = """
import sys, time
from grm.sampling import build_sampler
from grm.serving.engine import EngineSettings
from grm.serving.requests import AppConfig, ScoringDefaults
from grm.serving.server import start_in_thread
class Slow:
    def __init__(self, char_s):
        self.inner, self.char_s = build_sampler("world-teacher"), char_s
    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        out = self.inner.generate(prompts, n, temperature, max_new_tokens, seed)
        time.sleep(self.char_s * max(len(t) for texts in out for t in texts))
        return out
config = AppConfig(model_name="world-teacher", template="compact", defaults=ScoringDefaults(k=int(sys.argv[3])),
                   engine=EngineSettings(cache_size=0))
server = start_in_thread(Slow(float(sys.argv[1]) / 1000), port=int(sys.argv[2]), config=config)
time.sleep(10**6)
"""


def start_slow(char_ms: float, k: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-c", SLOW_SERVER, str(char_ms), str(port), str(k)]
    return spawn_until_healthy(cmd, port, ROOT, "the slowed teacher server did not start")


def oracle_principles(query: str) -> str:
    """The world's canonical principles of ``query`` in the teacher's own notation."""
    from grm.world.generator import family_of, principles

    (n1, w1), (n2, w2) = principles(family_of(query), query)
    return f"{n1} {w1} , {n2} {w2}"


async def judge_all(url: str, items: list, mode: str, k: int, clients: int) -> tuple[list, list[float], int]:
    """Every item's per-response mean scores, the request latencies and the generated characters."""
    results: list = [None] * len(items)
    latencies: list[float] = []
    chars = 0
    written: dict[str, str] = {}  # query_only: the principles text of each query (generated once)
    queue = list(range(len(items)))

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal chars
        while queue:
            i = queue.pop()
            it = items[i]
            body: dict = {"items": [{"query": it.query, "responses": [r]} for r in it.responses]}
            body.update(k=k, temperature=1.0, seed=i, return_samples=True)
            if mode == "query_only":
                body["principle_mode"] = "query_only"
            elif mode == "caller":
                body["principles"] = oracle_principles(it.query)
            t0 = time.monotonic()
            resp = await http.post("/v1/score", json=body)
            latencies.append(time.monotonic() - t0)
            resp.raise_for_status()
            res = resp.json()["results"]
            results[i] = [None if r["scores"] is None else r["scores"][0] for r in res]
            chars += sum(len(s["text"]) for r in res for s in r["samples"])
            if mode == "query_only" and res[0]["principles"]["text"] is not None:
                written[json.dumps(it.query)] = "\nSpecific Criteria: " + res[0]["principles"]["text"]

    async with httpx.AsyncClient(base_url=url, timeout=300) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return results, latencies, chars + sum(len(t) for t in written.values())


def accuracy(results: list, items: list) -> float:
    correct = 0.0
    for scores, it in zip(results, items, strict=True):
        values = [s if s is not None else 0.0 for s in scores]
        winners = [i for i, s in enumerate(values) if s == max(values)]
        correct += 1.0 / len(winners) if it.best in winners else 0.0
    return correct / len(items)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run(server: str, start, items: list, args: argparse.Namespace) -> list[dict]:
    rows = []
    for mode in MODES:
        proc, url = start()
        try:
            t0 = time.monotonic()
            results, latencies, chars = asyncio.run(judge_all(url, items, mode, args.k, args.clients))
            wall = time.monotonic() - t0
            text = httpx.get(f"{url}/metrics").text
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        generated = metric(text, 'grm_principles_total{outcome="generated"}')
        row = {
            "server": server,
            "mode": mode,
            "accuracy": accuracy(results, items),
            "p50_s": statistics.median(latencies),
            "p99_s": pct(latencies, 0.99),
            "groups_per_s": len(items) / wall,
            "generations_per_group": (metric(text, "grm_samples_total") + generated) / len(items),
            "chars_per_group": chars / len(items),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| server | mode | accuracy | p50 latency (s) | p99 latency (s) | groups/s | generations / group | "
        "generated chars / group |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['server']} | {r['mode']} | {r['accuracy']:.3f} | {r['p50_s']:.4f} | {r['p99_s']:.4f} | "
            f"{r['groups_per_s']:.1f} | {r['generations_per_group']:.2f} | {r['chars_per_group']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=300, help="test items with >= 2 responses")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--char-ms", type=float, default=0.2, help="modelled decode cost per character (0 = skip)")
    args = ap.parse_args()
    from grm.world.generator import WorldConfig, generate_world

    items = [it for it in generate_world(WorldConfig())["test"] if it.n >= 2][: args.items]
    print(f"{len(items)} world test items, k={args.k}, {args.clients} clients", flush=True)
    rows = run("grm serve world-teacher", lambda: start_server("world-teacher", ["--k", str(args.k)], 1), items, args)
    if args.char_ms > 0:
        rows += run(f"teacher + {args.char_ms:g} ms/char", lambda: start_slow(args.char_ms, args.k), items, args)
    print(table(rows))


if __name__ == "__main__":
    main()
