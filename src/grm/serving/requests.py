"""The request side of ``grm serve``: server settings, the request models (validation and OpenAPI schema), the
limit checks that name the failing field, and OpenRLHF's response shape. No web server here (pydantic only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from grm.serving.completions import RequestError
from grm.serving.engine import EngineSettings
from grm.serving.scoring import ScoreSettings
from grm.serving.serve_config import DEFAULTS
from grm.serving.texts import strip_stop_tokens

MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class ServerLimits:
    """Per-request limits; each violation is a 4xx naming the field."""

    max_body_bytes: int = DEFAULTS["max_body_bytes"]
    max_items: int = DEFAULTS["max_items"]  # items per /v1/score batch; per engine job of a /get_reward request
    max_reward_batch: int = DEFAULTS["max_reward_batch"]  # samples per /get_reward request (split into jobs)
    max_responses: int = DEFAULTS["max_responses"]  # responses per item (and group_size)
    max_k: int = DEFAULTS["max_k"]
    max_text_chars: int = DEFAULTS["max_text_chars"]  # per query, response or message
    max_principles_chars: int = DEFAULTS["max_principles_chars"]  # caller-supplied principles (a rubric joined)
    long_texts: str = DEFAULTS["long_texts"]  # "truncate": cut to max_text_chars and report it; "refuse": 400
    max_new_tokens: int = DEFAULTS["max_new_tokens_limit"]
    max_temperature: float = 5.0
    body_timeout_s: float = DEFAULTS["body_timeout_s"]  # the whole body must arrive within this (408 otherwise)
    max_in_flight: int = DEFAULTS["max_connections"]  # requests served at once (503 + Retry-After beyond)
    max_header_bytes: int = 64 * 1024  # h11 bounds a head that arrives slowly; this bounds one that came at once

    def __post_init__(self) -> None:
        if self.long_texts not in ("truncate", "refuse"):
            raise ValueError(f"long_texts={self.long_texts!r}: use 'truncate' or 'refuse'")


@dataclass(frozen=True)
class ScoringDefaults:
    """What a request gets for the settings it leaves out."""

    k: int = DEFAULTS["k"]
    k_meta: int | None = DEFAULTS["k_meta"]  # set (with a meta RM) to make MetaRM@k the default
    temperature: float = DEFAULTS["temperature"]
    seed: int = DEFAULTS["seed"]
    max_new_tokens: int = DEFAULTS["max_new_tokens"]


@dataclass
class AppConfig:
    """Everything ``create_app`` needs besides the sampler."""

    model_name: str = "grm"
    template: str = "deepseek-grm"
    api_key: str | None = None
    defaults: ScoringDefaults = field(default_factory=ScoringDefaults)
    limits: ServerLimits = field(default_factory=ServerLimits)
    engine: EngineSettings = field(default_factory=EngineSettings)
    access: Access = field(default_factory=lambda: Access())
    stop_tokens: tuple[str, ...] = ()  # stripped from responses before judging (see grm.serving.texts.stop_tokens)
    failed_reward: str | float = DEFAULTS[
        "failed_reward"
    ]  # a sample with no parsed judgement: "mid", "null" or a fixed reward


@dataclass(frozen=True)
class Access:
    """Who may call: ``api_key`` (bearer header, ``?api_key=`` or a ``/key/<KEY>/`` path prefix, for clients that
    cannot send headers), ``trusted_networks`` (CIDRs served without a key; an explicit choice) and
    ``allowed_hosts`` (``Host`` header values a key-less server answers: DNS-rebinding protection)."""

    trusted_networks: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: StrictStr


Query = StrictStr | list[Message]
Temperature = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]


Principles = StrictStr | list[StrictStr]
PrincipleMode = Literal["default", "query_only"]
PRINCIPLES_HELP = (
    "principles (or a rubric: a list of criteria) the GRM judges against instead of writing its own; they are "
    "written into the judgement prompt where the model's own would be"
)
MODE_HELP = (
    "`default`: the GRM writes principles in every judgement (after seeing the responses); `query_only`: principles "
    "are generated once per query (no responses shown), cached and shared by every response and sample"
)


class ScoreItem(BaseModel):
    """One query and the responses to judge together."""

    model_config = ConfigDict(extra="forbid")
    id: StrictStr | None = Field(None, description="echoed back")
    query: Query
    responses: list[StrictStr] = Field(min_length=1)
    principles: Principles | None = Field(None, description=PRINCIPLES_HELP + " (this item; overrides the request's)")


class ScoreRequest(BaseModel):
    """One item (``query`` + ``responses``), a batch (``items``) or one sample (``prompt`` + ``response``, slime
    style). Settings left out take the server's defaults."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    id: StrictStr | None = None
    query: Query | None = None
    responses: list[StrictStr] | None = None
    items: list[ScoreItem] | None = None
    prompt: Query | None = Field(None, description="per-sample form: the query (a string or chat messages)")
    response: StrictStr | None = Field(None, description="per-sample form: the one response")
    label: Any = Field(None, description="per-sample form: ignored (slime sends it)")
    group_id: StrictStr | None = Field(None, description="group mode: samples with this id are judged together")
    group_size: StrictInt | None = Field(None, ge=2, description="group mode: how many samples the group has")
    k: StrictInt | None = Field(None, ge=1, description="samples per item (Voting@k)")
    k_meta: StrictInt | None = Field(None, ge=1, description="MetaRM@k: samples the meta RM keeps")
    temperature: Temperature | None = None
    seed: StrictInt | None = Field(None, ge=0, le=MAX_SEED)
    max_new_tokens: StrictInt | None = Field(None, ge=1)
    return_samples: StrictBool = False
    principles: Principles | None = Field(None, description=PRINCIPLES_HELP)
    principle_mode: PrincipleMode | None = Field(None, description=MODE_HELP)


class GetRewardRequest(BaseModel):
    """OpenRLHF's remote reward request: ``query[i]`` = ``prompts[i]`` + the response."""

    model_config = ConfigDict(extra="allow")  # OpenRLHF may add fields (e.g. metas)
    query: list[StrictStr] = Field(min_length=1)
    prompts: list[StrictStr] | None = None
    labels: list[Any] | None = None
    principles: list[Principles | None] | None = Field(None, description=PRINCIPLES_HELP + " (one per query)")
    principle_mode: PrincipleMode | None = Field(None, description=MODE_HELP)


def check_text(text: str, where: str, limits: ServerLimits, cuts: list[str] | None = None) -> str:
    """``text`` within ``max_text_chars``: cut (and ``where`` added to ``cuts``) or, with ``long_texts="refuse"``
    (or no ``cuts`` list), a 400 naming the field."""
    if len(text) <= limits.max_text_chars:
        return text
    if limits.long_texts == "truncate" and cuts is not None:
        cuts.append(where)
        return text[: limits.max_text_chars]
    raise RequestError(
        f"`{where}` has {len(text)} characters; at most {limits.max_text_chars} (--max-text-chars).", param=where
    )


def check_query(query: Any, where: str, limits: ServerLimits, cuts: list[str] | None = None) -> Any:
    if isinstance(query, str):
        return check_text(query, where, limits, cuts)
    if not query:
        raise RequestError(f"`{where}` is an empty conversation; send a string or a list of messages.", param=where)
    if query[-1].role != "user":
        raise RequestError(f"`{where}` must end with a user turn.", param=where)
    return [
        {"role": m.role, "content": check_text(m.content, f"{where}[{i}].content", limits, cuts)}
        for i, m in enumerate(query)
    ]


def check_responses(
    responses: list[str],
    where: str,
    limits: ServerLimits,
    cuts: list[str] | None = None,
    stops: tuple[str, ...] = (),
) -> list[str]:
    """The responses within the limits, control tokens (``stops``) stripped, long ones cut (see ``check_text``)."""
    if len(responses) > limits.max_responses:
        raise RequestError(
            f"`{where}` has {len(responses)} responses; at most {limits.max_responses} (--max-responses).", param=where
        )
    return [check_text(strip_stop_tokens(r, stops)[0], f"{where}[{i}]", limits, cuts) for i, r in enumerate(responses)]


def check_principles(principles: str | list[str] | None, where: str, limits: ServerLimits) -> str | None:
    """Caller-supplied principles as the one text written into the prompt (a rubric's items joined with `` ; ``),
    or None; a 400 naming ``where`` when empty or longer than ``max_principles_chars``."""
    if principles is None:
        return None
    parts = [principles] if isinstance(principles, str) else principles
    for i, part in enumerate(parts):
        if not part.strip():
            name = where if isinstance(principles, str) else f"{where}[{i}]"
            raise RequestError(f"`{name}` is empty; send the principles' text or leave the field out.", param=name)
    if not parts:
        raise RequestError(f"`{where}` is an empty list; send at least one criterion or leave it out.", param=where)
    text = " ; ".join(part.strip() for part in parts)
    if len(text) > limits.max_principles_chars:
        raise RequestError(
            f"`{where}` has {len(text)} characters; at most {limits.max_principles_chars} (--max-principles-chars).",
            param=where,
        )
    return text


def check_principle_mode(mode: str | None, has_principles: bool) -> str:
    """The request's principle mode (default ``default``); ``query_only`` with given principles is a 400."""
    if mode == "query_only" and has_principles:
        raise RequestError(
            "`principle_mode` is query_only but the request also gives `principles`: the GRM either uses yours or "
            "generates them from the query; send one of the two.",
            param="principle_mode",
        )
    return mode or "default"


def resolve_settings(req: ScoreRequest, config: AppConfig, has_meta: bool) -> ScoreSettings:
    """The request's settings with the server's defaults filled in, checked against the limits."""
    d, lim = config.defaults, config.limits
    k = req.k if req.k is not None else d.k
    if k > lim.max_k:
        raise RequestError(f"`k` is {k}; this server allows at most {lim.max_k} (--max-k).", param="k")
    k_meta = req.k_meta if req.k_meta is not None else (d.k_meta if has_meta else None)
    if k_meta is not None:
        if not has_meta:
            raise RequestError(
                "`k_meta` needs a meta RM; this server has none (start it with --meta-rm DIR).", param="k_meta"
            )
        if k_meta > k:
            raise RequestError(f"`k_meta` ({k_meta}) must be <= k ({k}).", param="k_meta")
    temperature = req.temperature if req.temperature is not None else d.temperature
    if temperature > lim.max_temperature:
        raise RequestError(f"`temperature` must be <= {lim.max_temperature}, got {temperature}.", param="temperature")
    max_new = req.max_new_tokens if req.max_new_tokens is not None else d.max_new_tokens
    if max_new > lim.max_new_tokens:
        raise RequestError(
            f"`max_new_tokens` is {max_new}; at most {lim.max_new_tokens} (--max-new-tokens-limit).",
            param="max_new_tokens",
        )
    seed = req.seed if req.seed is not None else d.seed
    return ScoreSettings(
        k, k_meta, float(temperature), seed, max_new, req.return_samples, req.principle_mode or "default"
    )


FAILED_SCORE = 0.5  # /get_reward: a sample whose every judgement failed to parse gets the middle of the range


def openrlhf_response(
    members: list[dict[str, Any]], notes: dict[str, list[float]] | None = None, failed: str | float = "mid"
) -> dict[str, Any]:
    """OpenRLHF's response: ``scores`` in [0, 1] (the mean 1..10 score mapped linearly), ``rewards`` = 2 * score - 1
    in [-1, 1]. A sample with no parsed judgement (``grm_parse_failed`` = 1, the mask) gets the ``failed`` policy
    (``failed_reward_policy``). ``notes``: per-sample request facts for ``extra_logs`` (``grm_split``,
    ``grm_stop_stripped``, ``grm_truncated``)."""
    scores: list[float | None] = []
    for m in members:
        if m["reward"] is not None:
            scores.append(float(m["reward"]))
        elif failed == "mid":
            scores.append(FAILED_SCORE)
        elif failed == "null":
            scores.append(None)
        else:
            scores.append((float(failed) + 1) / 2)
    return {
        "rewards": [None if s is None else 2 * s - 1 for s in scores],
        "scores": scores,
        "extra_logs": {
            "grm_parse_failed": [float(m["reward"] is None) for m in members],
            "grm_parse_failure_rate": [m["parse_failures"]["count"] / m["k"] for m in members],
            "grm_n_voted": [float(m["n_voted"]) for m in members],
            "grm_grouped": [float(m["group"]["mode"] == "group") for m in members],
            "grm_raw_score": [0.0 if m["score"] is None else float(m["score"]) for m in members],
            **(notes or {}),
        },
    }
