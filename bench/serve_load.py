"""Benchmark: ``grm serve`` under load, dynamic batching on vs off, and group mode's accuracy vs pointwise.

Load: a ``grm serve`` subprocess over the embedded tiny world model (``bench/sampling.py``'s model) on loopback;
1 / 8 / 32 closed-loop clients each send OpenRLHF-style per-sample ``/get_reward`` requests (one prompt + response
from the world's test split) for ``--seconds``. Three servers:

* ``batched``: dynamic batching (``--max-batch-size``, ``--max-wait-ms``), per-sample requests;
* ``unbatched``: ``--no-batching`` (one request per sampler call), per-sample requests;
* ``plain-16``: OpenRLHF's pattern: the client sends 16 samples per request to a server that serves one request at
  a time (``--no-batching``).

Reported: judgements (scored responses) per second, p50 / p99 request latency, mean requests and generations per
sampler cycle (from ``/metrics``). Group mode: the world teacher (a real judge, fast) scores the test split
pointwise (each response alone, ``k`` samples each) and in group mode (the responses of one query judged together,
``k * n`` samples, the same generation budget) through per-sample requests; accuracy = the best response wins.

RL-cluster checks (``--cluster``, the world teacher, issue 27): (b) the row-11 mix: one ``/v1/completions`` request
of 32 prompts x n = 256 x 500 tokens while a client sends 1-item ``/v1/score`` requests one after another: their p50 /
p99 latency and the completion's own time; (c) OpenRLHF's retry policy (5 tries, 1 s apart, ``Retry-After``
ignored) at 1,536 concurrent one-sample ``/get_reward`` requests: rewards returned, 429/503 answers, wall time.
``--server-root DIR[,DIR2]`` runs the server from other checkouts (e.g. the main branch and this one) side by side
for a before/after; ``--c-clients fresh,pool`` drives (c) with a new connection per try (OpenRLHF's
``requests.post``) and/or one httpx client with a pool of 1,536 connections (each on a fresh server).

(a) ``--offline-share``: the batched server's judgements/s at 64 clients (``--clients 64``) as a share of the same
model's offline batched ``grm score`` rate (``judging.judge_items``) at the same k, with the clients' and the server's
CPU accounted separately (``bench/serve_share.py``).

Usage::

    .venv/bin/python bench/serve_load.py [--seconds 8] [--clients 1,8,32] [--k 4] [--max-new-tokens 24]
    .venv/bin/python bench/serve_load.py --cluster [--server-root /path/to/other/checkout,.] [--c-clients fresh,pool]
    .venv/bin/python bench/serve_load.py --offline-share --clients 64 [--load-client httpx,raw] [--profile-server 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import httpx  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, extra: list[str], threads: int, root: Path = ROOT) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "grm_cli.app", "serve", "--model", model, "--port", str(port)]
    cmd += ["--template", "compact", "--cache-size", "0", "--num-threads", str(threads), "--batch-size", "64", *extra]
    return spawn_until_healthy(cmd, port, root, f"grm serve did not start: {' '.join(cmd)}")


def spawn_until_healthy(cmd: list[str], port: int, root: Path, failure: str) -> tuple[subprocess.Popen, str]:
    """Start ``cmd`` with ``root``'s code first on the path; return it and its URL once ``/health`` answers 200
    (killed and ``RuntimeError(failure)`` after 120 s)."""
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(failure)


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


async def load(url: str, pairs: list[tuple[str, str]], clients: int, per_request: int, seconds: float) -> dict:
    latencies: list[float] = []
    judged = 0
    stop = time.monotonic() + seconds

    async def client(c: int, http: httpx.AsyncClient) -> None:
        nonlocal judged
        i = c * 997
        while time.monotonic() < stop:
            batch = [pairs[(i + j) % len(pairs)] for j in range(per_request)]
            i += per_request
            body = {"query": [f"{p} {r}" for p, r in batch], "prompts": [p for p, _ in batch]}
            t0 = time.monotonic()
            resp = await http.post("/get_reward", json=body)
            resp.raise_for_status()
            latencies.append(time.monotonic() - t0)
            judged += per_request

    async with httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(max_connections=64)) as http:
        t0 = time.monotonic()
        await asyncio.gather(*(client(c, http) for c in range(clients)))
        wall = time.monotonic() - t0
    latencies.sort()
    return {
        "judgements_per_s": judged / wall,
        "p50_s": statistics.median(latencies),
        "p99_s": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "requests": len(latencies),
    }


def run_load(args: argparse.Namespace) -> list[dict]:
    from bench.sampling import build_model
    from grm.world.generator import WorldConfig, generate_world

    test = generate_world(WorldConfig())["test"]
    pairs = [(it.query, r) for it in test for r in it.responses]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model, desc = build_model(Path(tmp))
        print(f"model: {desc}", flush=True)
        common = ["--k", str(args.k), "--max-new-tokens", str(args.max_new_tokens), "--temperature", "1.0"]
        servers = {
            "batched": ([*common, "--max-batch-size", str(args.max_batch_size), "--max-wait-ms", str(args.wait)], 1),
            "unbatched": ([*common, "--no-batching"], 1),
            "plain-16": ([*common, "--no-batching"], 16),
        }
        for name, (extra, per_request) in servers.items():
            proc, url = start_server(str(model), extra, args.threads)
            try:
                asyncio.run(load(url, pairs, 1, per_request, 1.0))  # warm-up
                for clients in args.clients:
                    before = httpx.get(f"{url}/metrics").text
                    stats = asyncio.run(load(url, pairs, clients, per_request, args.seconds))
                    after = httpx.get(f"{url}/metrics").text
                    cycles = metric(after, "grm_batch_requests_count") - metric(before, "grm_batch_requests_count")
                    reqs = metric(after, "grm_batch_requests_sum") - metric(before, "grm_batch_requests_sum")
                    gens = metric(after, "grm_batch_samples_sum") - metric(before, "grm_batch_samples_sum")
                    row = {
                        "server": name,
                        "clients": clients,
                        **stats,
                        "requests_per_cycle": reqs / cycles if cycles else 0.0,
                        "generations_per_cycle": gens / cycles if cycles else 0.0,
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    return rows


def run_group(args: argparse.Namespace) -> dict:
    """Pointwise vs group mode accuracy with the world teacher, equal generations per item."""
    from grm.world.generator import WorldConfig, generate_world

    items = [it for it in generate_world(WorldConfig())["test"] if it.n >= 2][: args.group_items]
    out = {}
    for mode, window in (("pointwise", 0), ("group", args.group_window_ms)):
        proc, url = start_server("world-teacher", ["--temperature", "1.0", "--group-window-ms", str(window)], 1)
        try:

            async def judge(url=url, mode=mode):
                async with httpx.AsyncClient(base_url=url, timeout=60) as http:

                    async def one(i, it):
                        k = args.k * it.n if mode == "group" else args.k  # equal generations per item
                        bodies = [
                            {"prompt": it.query, "response": r, "group_id": f"q{i}", "group_size": it.n, "k": k}
                            for r in it.responses
                        ]
                        t0 = time.monotonic()
                        res = await asyncio.gather(*(http.post("/v1/score", json=b) for b in bodies))
                        return [r.json()["score"] or 0.0 for r in res], time.monotonic() - t0

                    return await asyncio.gather(*(one(i, it) for i, it in enumerate(items)))

            results = asyncio.run(judge())
            groups = {
                line.split('"')[1]: float(line.split()[-1])
                for line in httpx.get(f"{url}/metrics").text.splitlines()
                if line.startswith("grm_groups_total{")
            }
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        correct = 0.0
        for (scores, _), it in zip(results, items, strict=True):
            top = max(scores)
            winners = [i for i, s in enumerate(scores) if s == top]
            correct += (1.0 / len(winners)) if it.best in winners else 0.0  # ties: half credit
        out[mode] = {
            "accuracy": correct / len(items),
            "generations_per_item": statistics.mean(args.k * it.n for it in items),
            "p50_latency_s": statistics.median(t for _, t in results),
            "groups": groups,
        }
        print(json.dumps({"mode": mode, **out[mode]}), flush=True)
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _row11_mix(url: str, items: list) -> dict:
    """One huge completion + sequential small scores; latencies of the small ones while the huge one runs."""
    from grm.method.prompts import render_prompt

    prompts = [render_prompt(it.query, [it.responses[0]], template="compact") for it in items[:32]]
    big = {"prompt": prompts, "n": 256, "max_tokens": 500, "temperature": 1.0}
    async with httpx.AsyncClient(base_url=url, timeout=900) as http:
        t0 = time.monotonic()
        huge = asyncio.ensure_future(http.post("/v1/completions", json=big))
        await asyncio.sleep(0.3)
        small: list[float] = []
        codes: list[int] = []
        i = 0
        while not huge.done() and time.monotonic() - t0 < 600:
            it = items[i % len(items)]
            i += 1
            s0 = time.monotonic()
            r = await http.post("/v1/score", json={"prompt": it.query, "response": it.responses[0], "seed": i})
            small.append(time.monotonic() - s0)
            codes.append(r.status_code)
        big_status = (await huge).status_code
        return {
            "completion_s": time.monotonic() - t0,
            "completion_status": big_status,
            "small_requests": len(small),
            "small_ok": codes.count(200),
            "small_p50_s": _pct(small, 0.5),
            "small_p99_s": _pct(small, 0.99),
            "small_max_s": max(small) if small else float("nan"),
        }


async def _post_fresh(url: str, path: str, body: dict, timeout: float) -> tuple[int, dict]:
    """One POST on a new connection closed after the answer: what OpenRLHF's ``requests.post`` (no session) does
    per try. Plain asyncio: httpx's pool of 1,536 connections costs O(connections) per request start and end, and
    O(idle x connections) once they go idle (httpcore 1.0 ``_assign_requests_to_connections``), which made the
    client, not the server, the bottleneck of (c)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    data = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(head.encode() + data)
            return await reader.read()  # until the server closes (Connection: close)
        finally:
            writer.close()

    raw = await asyncio.wait_for(exchange(), timeout)
    status_line, _, rest = raw.partition(b"\r\n")
    payload = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(payload) if payload else {}


async def _openrlhf_retries(url: str, items: list, count: int, client: str = "fresh") -> dict:
    """``count`` concurrent one-sample /get_reward requests, each with OpenRLHF's retry policy; ``client``:
    ``fresh`` (a new connection per try, as OpenRLHF) or ``pool`` (one httpx client, a pool of ``count``)."""
    statuses: dict[str, int] = {}

    async def one(http: httpx.AsyncClient, it) -> bool:
        body = {"query": [f"{it.query} {it.responses[0]}"], "prompts": [it.query], "labels": [""]}
        for _ in range(5):
            try:
                if client == "fresh":
                    status, answer = await _post_fresh(url, "/get_reward", body, 180)
                else:
                    r = await http.post("/get_reward", json=body)
                    status, answer = r.status_code, r.json()
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status == 200 and "rewards" in answer:
                    return True
            except (httpx.HTTPError, OSError, TimeoutError, ValueError, IndexError) as exc:
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
            await asyncio.sleep(1.0)
        return False

    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=180, limits=limits) as http:
        t0 = time.monotonic()
        ok = await asyncio.gather(*(one(http, items[i % len(items)]) for i in range(count)))
        wall = time.monotonic() - t0
    return {"client": client, "requests": count, "rewards_returned": sum(ok), "wall_s": wall, "answers": statuses}


SLOW_TEACHER = """
import sys, time
from grm.sampling import build_sampler
from grm.serving.requests import AppConfig, ScoringDefaults
from grm.serving.server import start_in_thread
class Slow:
    def __init__(self, delay):
        self.inner, self.delay = build_sampler("world-teacher"), delay
    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        time.sleep(self.delay * len(prompts) * n)
        return self.inner.generate(prompts, n, temperature, max_new_tokens, seed)
config = AppConfig(model_name="world-teacher", template="compact", defaults=ScoringDefaults(k=int(sys.argv[3])))
server = start_in_thread(Slow(float(sys.argv[1]) / 1000), port=int(sys.argv[2]), config=config)
time.sleep(10**6)
"""


def start_slow_teacher(delay_ms: float, k: int, root: Path) -> tuple[subprocess.Popen, str]:
    """The world teacher at ``delay_ms`` per generated text (a real model's cost per sample), served by the
    ``grm.serving`` of ``root`` with its default limits (``start_in_thread``: the same app as ``grm serve``)."""
    port = free_port()
    cmd = [sys.executable, "-c", SLOW_TEACHER, str(delay_ms), str(port), str(k)]
    return spawn_until_healthy(cmd, port, root, "the slow teacher server did not start")


def _cluster_server(args: argparse.Namespace, root: Path) -> tuple[subprocess.Popen, str]:
    if args.text_delay_ms > 0:
        return start_slow_teacher(args.text_delay_ms, args.k, root)
    return start_server("world-teacher", ["--k", str(args.k)], args.threads, root)


def _rejected(url: str) -> dict:
    return {
        line.split()[0]: float(line.split()[-1])
        for line in httpx.get(f"{url}/metrics").text.splitlines()
        if line.startswith("grm_rejected_total{")
    }


def run_cluster(args: argparse.Namespace) -> dict:
    """(b) and (c) for each ``--server-root`` (side by side in one run); (c) on a fresh server per client (its
    result cache would answer a second round)."""
    from grm.world.generator import WorldConfig, generate_world

    items = [it for it in generate_world(WorldConfig())["test"]]
    out: dict = {"text_delay_ms": args.text_delay_ms}
    for root in args.server_root or [ROOT]:
        side: dict = {}
        if not args.skip_row11:
            proc, url = _cluster_server(args, root)
            try:
                side["row11_mix"] = asyncio.run(_row11_mix(url, items))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        for client in args.c_clients:
            proc, url = _cluster_server(args, root)
            try:
                row = asyncio.run(_openrlhf_retries(url, items, args.concurrent, client))
                side[f"openrlhf_{args.concurrent}_{client}"] = {**row, "server_rejected": _rejected(url)}
                print(json.dumps({"server_root": str(root), **row}), flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        out[str(root)] = side
    return out


def table(rows: list[dict], group: dict | None) -> str:
    lines = [
        "| server | clients | judgements/s | p50 (s) | p99 (s) | requests / cycle | generations / cycle |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['server']} | {r['clients']} | {r['judgements_per_s']:.1f} | {r['p50_s']:.3f} | {r['p99_s']:.3f} | "
            f"{r['requests_per_cycle']:.1f} | {r['generations_per_cycle']:.1f} |"
        )
    if group:
        lines += ["", "| mode (world teacher, test split) | accuracy | generations / item | p50 latency (s) |"]
        lines += ["|---|---:|---:|---:|"]
        for mode, g in group.items():
            lines.append(
                f"| {mode} | {g['accuracy']:.3f} | {g['generations_per_item']:.1f} | {g['p50_latency_s']:.3f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="load duration per point")
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--k", type=int, default=4, help="samples per judgement")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--max-batch-size", type=int, default=256)
    parser.add_argument("--wait", type=float, default=10.0, help="max_wait_ms of the batched server")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of the server")
    parser.add_argument("--group-items", type=int, default=400)
    parser.add_argument("--group-window-ms", type=float, default=50.0)
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    parser.add_argument("--cluster", action="store_true", help="only the RL-cluster checks (b) and (c)")
    parser.add_argument("--concurrent", type=int, default=1536, help="(c): concurrent OpenRLHF requests")
    parser.add_argument(
        "--server-root",
        type=lambda s: [Path(x) for x in s.split(",")],
        default=None,
        help="run the server from this checkout; several, comma-separated, run side by side (e.g. /work/main,.)",
    )
    parser.add_argument(
        "--text-delay-ms", type=float, default=0.0, help="(b, c): the teacher at this cost per text (a real model)"
    )
    parser.add_argument("--offline-items", type=int, default=512, help="(a): items of the offline run")
    parser.add_argument("--skip-row11", action="store_true", help="--cluster: only (c)")
    parser.add_argument(
        "--c-clients",
        type=lambda s: s.split(","),
        default=["fresh"],
        help="(c)'s clients, comma-separated: fresh (a connection per try, as OpenRLHF) and/or pool (httpx)",
    )
    parser.add_argument("--offline-share", action="store_true", help="only (a): server rate / offline grm score rate")
    parser.add_argument(
        "--load-client",
        type=lambda s: s.split(","),
        default=["httpx", "raw"],
        help="(a)'s clients, comma-separated: httpx (an AsyncClient pool) and/or raw (asyncio streams, keep-alive)",
    )
    parser.add_argument("--profile-server", type=float, default=0.0, help="(a): py-spy the server for this long")
    args = parser.parse_args()
    if args.offline_share:
        from bench.serve_share import run_offline_share, table

        result = run_offline_share(args, start_server)
        print(json.dumps(result, indent=1))
        print(table(result))
        if args.out:
            args.out.write_text(json.dumps(result, indent=1))
        return
    if args.cluster:
        result = run_cluster(args)
        print(json.dumps(result, indent=1))
        if args.out:
            args.out.write_text(json.dumps(result, indent=1))
        return
    rows = [] if args.skip_load else run_load(args)
    group = run_group(args)
    print(table(rows, group))
    if args.out:
        args.out.write_text(json.dumps({"load": rows, "group": group, "args": vars(args)}, default=str, indent=1))


if __name__ == "__main__":
    main()
