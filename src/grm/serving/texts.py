"""What trainers actually send, made judgeable: splitting OpenRLHF's ``query`` (= prompt + response, decoded by the
trainer's tokenizer) at its prompt tolerantly, stripping end-of-sequence and padding tokens from responses, and
cutting over-long texts with the cut reported. Pure functions (no web framework).

Why tolerant: OpenRLHF decodes ``query`` from token ids, so ``clean_up_tokenization_spaces`` may have removed the
space before punctuation (``"17 + 25 ?"`` -> ``"17 + 25?"``) and ``prompt_max_len`` may have cut the prompt, while
``prompts`` holds the original text; an exact ``startswith`` refuses both. OpenRLHF 0.11 keeps the *last* tokens of a
prompt too long for ``max_len``, so its query can also start inside the prompt. Why strip: a response that ends properly
(``"42</s>"``, ``"42<|im_end|>"``) must not be judged on its control tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Control tokens of the common chat families; the served model's own (eos/pad/special) are added at start-up.
DEFAULT_STOP_TOKENS = (
    "</s>",
    "<s>",
    "<|im_end|>",
    "<|im_start|>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|eot_id|>",
    "<|end|>",
    "<|assistant|>",
    "<eos>",
    "<pad>",
    "<end_of_turn>",
    "<｜end▁of▁sentence｜>",
    "[EOS]",
    "[PAD]",
)

SPLIT_CODES = {"exact": 0.0, "whitespace": 1.0, "prompt_truncated": 2.0, "found": 3.0, "prompt_tail": 4.0}


@dataclass(frozen=True)
class Split:
    """A query cut into prompt and response, and how the cut was found (``SPLIT_CODES``)."""

    prompt: str
    response: str
    how: str


def _dense(text: str) -> tuple[str, list[int]]:
    """``text`` without whitespace, and for each kept character its index in ``text``."""
    kept = [(i, c) for i, c in enumerate(text) if not c.isspace()]
    return "".join(c for _, c in kept), [i for i, _ in kept]


def _tail_overlap(dq: str, dp: str) -> int:
    """The length of the longest suffix of ``dp`` that ``dq`` starts with (KMP prefix function, linear time)."""
    s = dq[: len(dp)] + "\x00" + dp
    pi = [0] * len(s)
    for i in range(1, len(s)):
        j = pi[i - 1]
        while j and s[i] != s[j]:
            j = pi[j - 1]
        pi[i] = j + (s[i] == s[j])
    return pi[-1]


def split_query(query: str, prompt: str, min_prefix: int = 8) -> Split | None:
    """Cut ``query`` (= prompt + response as a trainer decoded it) after its prompt.

    In order: an exact prefix; the prompt as a prefix when whitespace is ignored (tokenizer clean-up); a prompt cut
    by the trainer's length limit (``query`` follows ``prompt`` for at least ``min_prefix`` non-space characters,
    then the response starts where they differ); the prompt found inside ``query`` (a template prefix the trainer
    added); ``query`` starting with the prompt's last ``min_prefix`` or more non-space characters (the trainer kept
    the prompt's tail, as OpenRLHF 0.11 does). None when none of these holds.
    """
    if query.startswith(prompt):
        return Split(prompt, query[len(prompt) :], "exact")
    dq, qpos = _dense(query)
    dp, _ = _dense(prompt)
    if not dp:
        return Split(prompt, query, "exact")
    if dq.startswith(dp):
        return Split(prompt, query[qpos[len(dp) - 1] + 1 :], "whitespace")
    common = 0
    for a, b in zip(dq, dp, strict=False):
        if a != b:
            break
        common += 1
    if common >= min(min_prefix, len(dp)):
        return Split(prompt, query[qpos[common - 1] + 1 :], "prompt_truncated")
    at = dq.find(dp)
    if at >= 0:
        return Split(prompt, query[qpos[at + len(dp) - 1] + 1 :], "found")
    tail = _tail_overlap(dq, dp)
    if tail >= min_prefix:
        return Split(prompt, query[qpos[tail - 1] + 1 :], "prompt_tail")
    return None


def strip_stop_tokens(text: str, tokens: Sequence[str]) -> tuple[str, bool]:
    """``text`` without leading/trailing whitespace and control tokens (repeated); whether any token was removed.
    Tokens inside the text are left: only a finished (or padded) response's markers go."""
    out = text
    changed = True
    while changed:
        changed = False
        trimmed = out.strip()
        for tok in tokens:
            if tok and trimmed.endswith(tok):
                trimmed, changed = trimmed[: -len(tok)], True
            if tok and trimmed.startswith(tok):
                trimmed, changed = trimmed[len(tok) :], True
        if changed:
            out = trimmed
    return out.strip(), out != text


def stop_tokens(extra: Iterable[str] = (), sampler: object = None) -> tuple[str, ...]:
    """The default control tokens, the served model's own (its tokenizer's eos/pad/additional special tokens, when
    the sampler has a tokenizer) and ``extra``, longest first (so ``<|im_end|>`` goes before a shorter overlap)."""
    found: set[str] = set(DEFAULT_STOP_TOKENS) | {t for t in extra if t}
    tok = getattr(sampler, "tokenizer", None)
    if tok is not None:
        for name in ("eos_token", "pad_token", "bos_token"):
            value = getattr(tok, name, None)
            if isinstance(value, str) and value:
                found.add(value)
        for value in getattr(tok, "all_special_tokens", None) or []:
            if isinstance(value, str) and value and not value.isspace():
                found.add(value)
    return tuple(sorted(found, key=lambda t: (-len(t), t)))


def cut(text: str, max_chars: int) -> tuple[str, bool]:
    """``text`` cut to ``max_chars`` characters (the head is kept), and whether it was cut."""
    return (text, False) if len(text) <= max_chars else (text[:max_chars], True)
