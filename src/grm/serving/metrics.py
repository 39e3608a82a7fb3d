"""Prometheus text exposition (format 0.0.4) for the server, without a client library or a global registry (each
server has its own counters, so several servers in one process, as in the tests, do not mix)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def _labels(pairs: Sequence[tuple[str, str]]) -> str:
    if not pairs:
        return ""
    inner = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in pairs)
    return "{" + inner + "}"


class Histogram:
    """Cumulative-bucket histogram with one series per label tuple."""

    def __init__(self, buckets: Sequence[float]):
        self.buckets = tuple(buckets)
        self.counts: dict[tuple, list[int]] = defaultdict(lambda: [0] * (len(self.buckets) + 1))
        self.sums: dict[tuple, float] = defaultdict(float)

    def observe(self, value: float, labels: tuple = ()) -> None:
        row = self.counts[labels]
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                row[i] += 1
        row[-1] += 1
        self.sums[labels] += value

    def render(self, name: str, label_names: Sequence[str]) -> list[str]:
        lines = []
        for labels, row in sorted(self.counts.items()):
            base = list(zip(label_names, labels, strict=True))
            for bound, count in zip(self.buckets, row, strict=False):
                lines.append(f"{name}_bucket{_labels([*base, ('le', repr(float(bound)))])} {count}")
            lines.append(f"{name}_bucket{_labels([*base, ('le', '+Inf')])} {row[-1]}")
            lines.append(f"{name}_sum{_labels(base)} {self.sums[labels]}")
            lines.append(f"{name}_count{_labels(base)} {row[-1]}")
        return lines


class Metrics:
    """The server's counters; thread-safe (the sampler thread records batches, the event loop records requests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = defaultdict(int)
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_samples = Histogram(BATCH_BUCKETS)
        self.batch_jobs = Histogram(BATCH_BUCKETS)
        self.samples_total = 0
        self.samples_failed = 0
        self.cache_hits = 0
        self.rejected: dict[str, int] = defaultdict(int)
        self.groups: dict[str, int] = defaultdict(int)
        self.principles: dict[str, int] = defaultdict(int)  # query_only: "generated" (sampled) or "cached"
        self.gauges: dict[str, Callable[[], float]] = {}

    def request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, str(status))] += 1
            self.latency.observe(seconds, (route,))

    def batch(self, samples: int, jobs: int) -> None:
        with self._lock:
            self.batch_samples.observe(samples)
            self.batch_jobs.observe(jobs)

    def parsed(self, total: int, failed: int) -> None:
        with self._lock:
            self.samples_total += total
            self.samples_failed += failed

    def count(self, table: str, key: str) -> None:
        with self._lock:
            getattr(self, table)[key] += 1

    def render(self) -> str:
        """The exposition text."""
        with self._lock:
            lines = [
                "# HELP grm_requests_total HTTP requests by route and status.",
                "# TYPE grm_requests_total counter",
            ]
            lines += [
                f"grm_requests_total{_labels([('route', r), ('status', s)])} {v}"
                for (r, s), v in sorted(self.requests.items())
            ]
            lines += ["# HELP grm_request_seconds Request latency.", "# TYPE grm_request_seconds histogram"]
            lines += self.latency.render("grm_request_seconds", ["route"])
            lines += ["# HELP grm_batch_samples Generations per sampler cycle.", "# TYPE grm_batch_samples histogram"]
            lines += self.batch_samples.render("grm_batch_samples", [])
            lines += [
                "# HELP grm_batch_requests Requests served per sampler cycle.",
                "# TYPE grm_batch_requests histogram",
            ]
            lines += self.batch_jobs.render("grm_batch_requests", [])
            rate = self.samples_failed / self.samples_total if self.samples_total else 0.0
            lines += [
                "# HELP grm_samples_total Judgement samples generated and parsed.",
                "# TYPE grm_samples_total counter",
                f"grm_samples_total {self.samples_total}",
                "# HELP grm_parse_failures_total Samples whose scores could not be parsed.",
                "# TYPE grm_parse_failures_total counter",
                f"grm_parse_failures_total {self.samples_failed}",
                "# HELP grm_parse_failure_rate Share of samples that failed to parse.",
                "# TYPE grm_parse_failure_rate gauge",
                f"grm_parse_failure_rate {rate}",
                "# HELP grm_cache_hits_total Requests answered from the result cache.",
                "# TYPE grm_cache_hits_total counter",
                f"grm_cache_hits_total {self.cache_hits}",
                "# HELP grm_rejected_total Requests refused by back-pressure, by status.",
                "# TYPE grm_rejected_total counter",
            ]
            lines += [f"grm_rejected_total{_labels([('status', k)])} {v}" for k, v in sorted(self.rejected.items())]
            lines += ["# HELP grm_groups_total Group-mode outcomes.", "# TYPE grm_groups_total counter"]
            lines += [f"grm_groups_total{_labels([('outcome', k)])} {v}" for k, v in sorted(self.groups.items())]
            lines += [
                "# HELP grm_principles_total query_only principles: generated or reused from the cache.",
                "# TYPE grm_principles_total counter",
            ]
            lines += [
                f"grm_principles_total{_labels([('outcome', k)])} {v}" for k, v in sorted(self.principles.items())
            ]
            gauges = dict(self.gauges)
        for name, fn in sorted(gauges.items()):
            lines += [f"# TYPE {name} gauge", f"{name} {fn()}"]
        return "\n".join(lines) + "\n"
