"""``ServeConfig``: the one definition of every ``grm serve`` knob (name, type, default, help, check).

Each field is a knob: its name is the CLI option (``max_items`` -> ``--max-items``), its annotation the type, its
default the default, and its metadata the help text, the ``--help`` panel and the check. ``grm_cli.serve`` builds
its options from these fields, ``grm.serving.serve_command`` takes a ``ServeConfig``, and the components' own
settings (``ServerLimits``, ``ScoringDefaults``, ``EngineSettings``, ``ConnectionLimits``) take their defaults from
``DEFAULTS``, so a default is stated once. A value that fails its check raises ``ServeConfigError`` (a
``UserError``: the CLI prints it and exits 2) naming the option.

This module is a leaf of ``grm.serving``: it imports nothing of it (only ``grm.errors`` and ``grm.method.prompts``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from grm.errors import UserError
from grm.method.prompts import TEMPLATES

PERF = "Throughput"
LIMITS = "Limits"
REGISTRY = "Registry"
MODEL = "Model"
Check = Callable[[Any], str | None]


class ServeConfigError(UserError, ValueError):
    """A knob with a value it does not take; the message names the option and what it takes."""


def knob(default: Any = MISSING, help: str = "", panel: str | None = None, check: Check | None = None) -> Any:
    """A ``ServeConfig`` field: ``default`` (MISSING: required), the ``--help`` text, panel and check (a function
    of the value that returns what is wrong with it, or None)."""
    meta = {"help": help, "panel": panel, "check": check}
    if isinstance(default, tuple | list):
        return field(default=tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


def at_least(low: float, optional: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value < low:
            return f"must be a number >= {low:g}"
        return None

    return check


def above(low: float) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= low:
            return f"must be a number > {low:g}"
        return None

    return check


def one_of(*choices: Any, optional: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if value in choices or (value is None and optional):
            return None
        return f"use one of {', '.join(map(str, choices))}"

    return check


def port_number(value: Any) -> str | None:
    return None if isinstance(value, int) and 0 <= value <= 65535 else "must be a TCP port, 0..65535 (0: any free)"


def failed_reward_policy(value: str | float) -> str | float:
    """``--failed-reward``: ``mid`` (score 0.5, reward 0), ``null`` (JSON null: TRL skips it; OpenRLHF cannot take
    it) or a number (the reward in [-1, 1] that a failed sample gets).

    Raises:
        ServeConfigError: anything else.
    """
    if value in ("mid", "null"):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ServeConfigError(f"{value!r}: use mid, null or a number in [-1, 1]", field="--failed-reward") from None
    if not -1 <= number <= 1:
        raise ServeConfigError(
            f"{value!r}: a number must be in [-1, 1] (the /get_reward reward range)", field="--failed-reward"
        )
    return number


def _failed_reward(value: Any) -> str | None:
    try:
        failed_reward_policy(value)
    except ServeConfigError as exc:
        return str(exc).split(": ", 2)[2]  # "--failed-reward: VALUE: what is wrong"
    return None


@dataclass(frozen=True)
class ServeConfig:
    """Every ``grm serve`` knob (see the module doc); ``option(name)`` is its CLI spelling."""

    model: str = knob(
        help="a local model dir, world-teacher[:RATE], http://HOST:PORT (vllm serve), vllm:PATH, or from the "
        "MLflow registry: champion, challenger, models:/NAME@ALIAS (with its registered meta RM)"
    )
    host: str = knob("127.0.0.1", "bind address; any other than 127.0.0.1 needs --api-key or --trust-network")
    port: int = knob(8000, "TCP port", check=port_number)
    served_model_name: str | None = knob(None, "name reported by /v1/models (default: --model)")
    meta_rm: str | None = knob(None, "trained meta-RM dir: enables MetaRM@k (k_meta)")
    template: str | None = knob(
        None,
        "prompt template (deepseek-grm, compact); default: the one the registry recorded for champion/challenger, "
        "compact for world-teacher, else deepseek-grm",
        check=one_of(*TEMPLATES, optional=True),
    )
    api_key: str | None = knob(
        None,
        "the key required on every route but /health; prefer $GRM_API_KEY or --api-key-file (a command line is "
        "readable by local users). Clients send it as a Bearer header, a /key/KEY/ path prefix or ?api_key=KEY",
    )
    api_key_file: str | None = knob(None, "read the key from this file's first line")
    trust_network: tuple[str, ...] = knob(
        (), "serve clients in this CIDR without a key (repeatable; e.g. 10.0.0.0/8 for the cluster)"
    )
    allowed_host: tuple[str, ...] = knob((), "extra Host name a key-less loopback server answers (repeatable)")
    stop_token: tuple[str, ...] = knob(
        (), "control token stripped from responses, besides common ones and the model's (repeatable)"
    )
    failed_reward: str = knob(
        "mid",
        "reward of a sample with no parsed judgement: mid (0), null, or a number in [-1, 1]",
        check=_failed_reward,
    )
    k: int = knob(4, "default samples per item (Voting@k)", check=at_least(1))
    k_meta: int | None = knob(None, "default MetaRM@k kept samples (needs --meta-rm)", check=at_least(1, True))
    temperature: float = knob(0.5, "default sampling temperature", check=at_least(0))
    seed: int = knob(0, "default seed (shuffles and sampling)", check=at_least(0))
    max_new_tokens: int = knob(512, "default generation budget per judgement", check=at_least(1))
    max_batch_size: int = knob(64, "generations per sampler cycle", PERF, at_least(1))
    max_wait_ms: float = knob(10.0, "how long a request waits for others to batch with", PERF, at_least(0))
    batching: bool = knob(True, "merge concurrent requests into shared calls", PERF)
    cache_size: int = knob(1024, "cached results of identical requests (0 = off)", PERF, at_least(0))
    group_window_ms: float = knob(
        0.0, "group mode: judge per-sample requests of one prompt together (0 = off)", PERF, at_least(0)
    )
    max_pending_samples: int = knob(
        8192, "queued generations before a request waits (429 + Retry-After past its deadline)", LIMITS, at_least(1)
    )
    request_timeout_s: float = knob(300.0, "a request's deadline: 504 after this long", LIMITS, above(0))
    max_body_bytes: int = knob(4 << 20, "request body limit (413)", LIMITS, at_least(1))
    max_items: int = knob(64, "items per /v1/score batch (and per job of a /get_reward batch)", LIMITS, at_least(1))
    max_reward_batch: int = knob(
        8192, "samples per /get_reward request (a whole OpenRLHF rollout)", LIMITS, at_least(1)
    )
    long_texts: str = knob(
        "truncate", "over --max-text-chars: truncate (reported) or refuse (400)", LIMITS, one_of("truncate", "refuse")
    )
    keep_alive_s: float = knob(600.0, "idle keep-alive connection timeout (seconds)", LIMITS, above(0))
    max_responses: int = knob(16, "responses per item", LIMITS, at_least(1))
    max_k: int = knob(32, "largest k a request may ask for", LIMITS, at_least(1))
    max_new_tokens_limit: int = knob(4096, "largest max_new_tokens a request may ask for", LIMITS, at_least(1))
    max_text_chars: int = knob(32000, "characters per query/response", LIMITS, at_least(1))
    max_principles_chars: int = knob(4000, "characters of caller-supplied principles per item", LIMITS, at_least(1))
    header_timeout_s: float = knob(10.0, "request head deadline", LIMITS, above(0))
    body_timeout_s: float = knob(30.0, "request body deadline (408)", LIMITS, above(0))
    max_connections: int = knob(8192, "requests in flight (503 + Retry-After beyond)", LIMITS, at_least(1))
    device: str = knob("cpu", "torch device for a local model", MODEL)
    num_threads: int | None = knob(None, "torch CPU threads", MODEL, at_least(1, True))
    batch_size: int = knob(16, "prompts per forward batch (local model)", MODEL, at_least(1))
    chat_template: bool = knob(False, "wrap prompts in the tokenizer's chat template", MODEL)
    trust_remote_code: bool = knob(False, "let the model repo run its own code", MODEL)
    project_dir: str = knob(".", "project whose MLflow store holds the registry", REGISTRY)
    tracking_uri: str | None = knob(None, "MLflow store (default: the project's)", REGISTRY)
    registry_model_name: str = knob("grm", "registered GRM name", REGISTRY)
    registry_meta_name: str = knob("grm-meta-rm", "registered meta-RM name", REGISTRY)

    def __post_init__(self) -> None:
        for f in fields(self):
            check = f.metadata.get("check")
            problem = check(getattr(self, f.name)) if check else None
            if problem:
                raise ServeConfigError(f"{getattr(self, f.name)!r}: {problem}", field=option(f.name))
        if self.k > self.max_k:
            raise ServeConfigError(f"{self.k} is above --max-k {self.max_k}", field="--k")
        if self.max_new_tokens > self.max_new_tokens_limit:
            raise ServeConfigError(
                f"{self.max_new_tokens} is above --max-new-tokens-limit {self.max_new_tokens_limit}",
                field="--max-new-tokens",
            )
        if self.k_meta is not None and self.k_meta > self.k:
            raise ServeConfigError(f"{self.k_meta} is above --k {self.k}", field="--k-meta")

    def sampler_options(self) -> dict[str, Any]:
        """The knobs ``build_sampler`` takes for a local model."""
        names = ("device", "num_threads", "batch_size", "chat_template", "trust_remote_code")
        return {name: getattr(self, name) for name in names}


def option(name: str) -> str:
    """The CLI spelling of a knob: ``max_items`` -> ``--max-items``."""
    return "--" + name.replace("_", "-")


DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(ServeConfig) if f.default is not MISSING}
"""Every knob's default by name: the components' settings read theirs from here."""
