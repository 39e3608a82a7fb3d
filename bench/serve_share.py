"""Benchmark (a) of issue 27, with its causes separated: ``grm serve``'s judgements/s at 64 closed-loop per-sample
``/get_reward`` clients as a share of the same model's offline batched rate (``grm score``'s ``judging.judge_items``,
the same k, tokens, template, threads and forward batch), and where the CPU goes.

The clients run in this process, the server in its own; on a 2-core machine they compete for the cores the model
uses. Accounted over the load window:

* the clients' CPU (``time.process_time`` of this process: only the load generator runs in it meanwhile), with two
  clients: ``httpx`` (one ``AsyncClient``, a pool of 64 keep-alive connections, what the bench used) and ``raw``
  (64 keep-alive connections over plain asyncio streams, a minimal HTTP/1.1 client);
* the server's CPU per thread (``/proc/PID/task/*/stat``): its main thread (uvicorn's event loop: HTTP, JSON,
  validation, scheduling, scoring the parsed samples) and the others (the sampler worker: rendering, tokenising, the
  model's forward passes; torch's threads);
* the sampler's cycles (``/metrics``: generations and requests per cycle) against the offline run's batches;
* the offline rate before, between and after the served runs: each served run is compared with the mean of the two
  offline runs around it, so a machine shared with other jobs drifts less into the share.

Printed per client: judgements/s, share of offline, client CPU cores, server main-thread and sampler cores, CPU
seconds per judgement of each part and of the offline run. ``--profile-server S`` also samples the server with
py-spy for S seconds of the load (``py-spy`` on PATH) and prints the top leaf frames of its main thread.

    python bench/serve_load.py --offline-share --clients 64 --seconds 8 [--load-client httpx,raw] [--profile-server 6]
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``, by thread id."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def _request_bytes(host: str, port: str, pair: tuple[str, str]) -> bytes:
    body = json.dumps({"query": [f"{pair[0]} {pair[1]}"], "prompts": [pair[0]]}).encode()
    head = f"POST /get_reward HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _raw_exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> int:
    """One request on a keep-alive connection; the status (the body is read by its Content-Length and dropped)."""
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(x.split(":", 1)[1]) for x in lines if x.lower().startswith("content-length:"))
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def load(url: str, pairs: list[tuple[str, str]], clients: int, seconds: float, kind: str) -> dict:
    """``clients`` closed-loop clients, one sample per ``/get_reward`` request, for ``seconds``."""
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    host, port = url.removeprefix("http://").rsplit(":", 1)

    async def raw_client(c: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        i = c * 997
        try:
            while time.monotonic() < stop:
                t0 = time.monotonic()
                status = await _raw_exchange(reader, writer, _request_bytes(host, port, pairs[i % len(pairs)]))
                if status != 200:
                    raise RuntimeError(f"/get_reward answered {status}")
                latencies.append(time.monotonic() - t0)
                i += 1
        finally:
            writer.close()

    async def httpx_client(c: int, http: httpx.AsyncClient) -> None:
        i = c * 997
        while time.monotonic() < stop:
            p, r = pairs[i % len(pairs)]
            t0 = time.monotonic()
            resp = await http.post("/get_reward", json={"query": [f"{p} {r}"], "prompts": [p]})
            resp.raise_for_status()
            latencies.append(time.monotonic() - t0)
            i += 1

    t0 = time.monotonic()
    if kind == "raw":
        await asyncio.gather(*(raw_client(c) for c in range(clients)))
    else:
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
            await asyncio.gather(*(httpx_client(c, http) for c in range(clients)))
    wall = time.monotonic() - t0
    latencies.sort()
    return {
        "judgements_per_s": len(latencies) / wall,
        "p50_s": statistics.median(latencies),
        "p99_s": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "requests": len(latencies),
        "wall_s": wall,
    }


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def _profile(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    spy = shutil.which("py-spy")
    if spy is None:
        return None
    cmd = [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "50", "-f", "raw", "-t", "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_frames(raw: Path, pid: int, n: int = 12) -> dict:
    """From py-spy's collapsed stacks: the main thread's share of samples, its top leaf frames and the top
    frames (inclusive) from grm's own code."""
    leaves: Counter = Counter()
    grm: Counter = Counter()
    threads: Counter = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        main = f"(tid: {pid})" in frames[0] or "MainThread" in frames[0]
        threads["main" if main else "other"] += int(count)
        if not main:
            continue
        leaves[frames[-1]] += int(count)
        for f in set(frames):
            if "grm/" in f:
                grm[f] += int(count)
    total = max(1, threads["main"])
    return {
        "samples": dict(threads),
        "main_leaf": [(f, round(c / total, 3)) for f, c in leaves.most_common(n)],
        "main_grm_inclusive": [(f, round(c / total, 3)) for f, c in grm.most_common(n)],
    }


def measure_server(url: str, pid: int, pairs: list, clients: int, seconds: float, kind: str, prof: float) -> dict:
    """One load window: the load's figures plus client / server-thread CPU and the sampler's cycles."""
    asyncio.run(load(url, pairs, clients, 1.0, kind))  # warm-up (connections, first cycles)
    before_m, before_t, c0 = httpx.get(f"{url}/metrics").text, thread_cpu(pid), time.process_time()
    spy_out = Path(tempfile.mkstemp(suffix=".txt")[1])
    spy = _profile(pid, min(prof, seconds - 1), spy_out) if prof else None
    stats = asyncio.run(load(url, pairs, clients, seconds, kind))
    c1, after_t, after_m = time.process_time(), thread_cpu(pid), httpx.get(f"{url}/metrics").text
    wall, judged = stats["wall_s"], stats["requests"]
    main = after_t.get(pid, 0.0) - before_t.get(pid, 0.0)
    others = sum(v - before_t.get(t, 0.0) for t, v in after_t.items() if t != pid)
    cycles = _metric(after_m, "grm_batch_samples_count") - _metric(before_m, "grm_batch_samples_count")
    gens = _metric(after_m, "grm_batch_samples_sum") - _metric(before_m, "grm_batch_samples_sum")
    reqs = _metric(after_m, "grm_batch_requests_sum") - _metric(before_m, "grm_batch_requests_sum")
    row = {
        "client": kind,
        **stats,
        "client_cores": (c1 - c0) / wall,
        "server_main_cores": main / wall,
        "server_other_cores": others / wall,
        "client_cpu_ms_per_judgement": 1000 * (c1 - c0) / judged,
        "server_main_cpu_ms_per_judgement": 1000 * main / judged,
        "server_other_cpu_ms_per_judgement": 1000 * others / judged,
        "cycles_per_s": cycles / wall,
        "generations_per_cycle": gens / cycles if cycles else 0.0,
        "requests_per_cycle": reqs / cycles if cycles else 0.0,
    }
    if spy is not None:
        spy.wait(timeout=60)
        if spy_out.stat().st_size:
            row["profile"] = top_frames(spy_out, pid)
    spy_out.unlink(missing_ok=True)
    return row


def offline_rate(model: str, pairs: list, args) -> dict:
    """``grm score``'s path on the same model: judgements/s and CPU ms per judgement of this process."""
    from grm.method import judging
    from grm.sampling import build_sampler
    from grm.serving.scoring import make_item

    sampler = build_sampler(model, num_threads=args.threads, batch_size=64, progress=False)
    items = [make_item(q, [r]) for q, r in pairs[: args.offline_items]]
    settings = {"k": args.k, "temperature": 1.0, "max_new_tokens": args.max_new_tokens, "template": "compact"}
    judging.judge_items(items[:64], sampler, seed=1, **settings)  # warm-up
    t0, c0 = time.monotonic(), time.process_time()
    judging.judge_items(items, sampler, seed=0, **settings)
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    return {
        "judgements_per_s": len(items) / wall,
        "cpu_ms_per_judgement": 1000 * cpu / len(items),
        "items": len(items),
    }


def run_offline_share(args, start_server) -> dict:
    """(a): offline, then for each ``--load-client`` kind a fresh server followed by another offline run; each served
    row's share is against the mean of the offline runs just before and after it (a shared machine drifts)."""
    from bench.sampling import build_model
    from grm.world.generator import WorldConfig, generate_world

    test = generate_world(WorldConfig())["test"]
    pairs = [(it.query, r) for it in test for r in it.responses]
    clients = args.clients[-1]
    out: dict = {"clients": clients, "k": args.k, "max_new_tokens": args.max_new_tokens, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        model, out["model"] = build_model(Path(tmp))
        offline = [offline_rate(str(model), pairs, args)]
        common = ["--k", str(args.k), "--max-new-tokens", str(args.max_new_tokens), "--temperature", "1.0"]
        extra = [*common, "--max-batch-size", str(args.max_batch_size), "--max-wait-ms", str(args.wait)]
        for kind in args.load_client:
            proc, url = start_server(str(model), extra, args.threads)
            try:
                row = measure_server(url, proc.pid, pairs, clients, args.seconds, kind, args.profile_server)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            offline.append(offline_rate(str(model), pairs, args))
            off = {k: (offline[-2][k] + offline[-1][k]) / 2 for k in offline[-1]}
            row["offline_judgements_per_s"] = off["judgements_per_s"]
            row["offline_cpu_ms_per_judgement"] = off["cpu_ms_per_judgement"]
            row["share"] = row["judgements_per_s"] / off["judgements_per_s"]
            row["sampler_cpu_vs_offline"] = row["server_other_cpu_ms_per_judgement"] / off["cpu_ms_per_judgement"]
            out["rows"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "profile"}), flush=True)
    out["offline_runs"] = offline
    return out


def table(out: dict) -> str:
    runs = ", ".join(f"{r['judgements_per_s']:.1f}" for r in out["offline_runs"])
    lines = [
        f"offline runs (judging.judge_items, {out['offline_runs'][0]['items']} items; before, between and after the "
        f"served runs): {runs} judgements/s",
        "| client | judgements/s | offline (runs around it) | share | p50 (s) | p99 (s) | client cores | "
        "server main-thread cores | sampler cores | CPU ms / judgement: client / server main / sampler (offline) | "
        "gens / cycle |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in out["rows"]:
        lines.append(
            f"| {r['client']} | {r['judgements_per_s']:.1f} | {r['offline_judgements_per_s']:.1f} | "
            f"{100 * r['share']:.0f}% | {r['p50_s']:.3f} | {r['p99_s']:.3f} | {r['client_cores']:.2f} | "
            f"{r['server_main_cores']:.2f} | {r['server_other_cores']:.2f} | {r['client_cpu_ms_per_judgement']:.2f} / "
            f"{r['server_main_cpu_ms_per_judgement']:.2f} / {r['server_other_cpu_ms_per_judgement']:.2f} "
            f"({r['offline_cpu_ms_per_judgement']:.2f}) | {r['generations_per_cycle']:.1f} |"
        )
    return "\n".join(lines)
