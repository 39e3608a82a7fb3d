"""Rule-based rewards usable as TRL ``reward_funcs`` entries (SPEC §4, paper Eq. 11).

A TRL reward is ``(completions, **kwargs) -> list[float | None]``; dataset columns arrive as kwargs, one value per
completion. Ground truth is passed as the columns ``best`` (position in the order shown to the judge; -1 or None
for single responses), ``label`` (0/1; -1 or None for n >= 2) and ``n`` (number of responses).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grm.method.completion_text import completion_text
from grm.method.correctness import is_correct
from grm.method.parsing import extract_scores
from grm.method.prompts import score_range


def _opt(value: Any) -> int | None:
    return None if value is None or int(value) < 0 else int(value)


class CorrectnessReward:
    """+1 when the judgement is correct (Eq. 10), -1 otherwise, parse failures included (Eq. 11).

    Example:
        >>> reward = CorrectnessReward()
        >>> reward(["Scores: \\\\boxed{9, 2}", "Scores: \\\\boxed{5, 5}"], best=[0, 0], label=[-1, -1], n=[2, 2])
        [1.0, -1.0]
    """

    __name__ = "correctness_reward"  # TRL logs rewards under the function's name

    def __init__(self, correct: float = 1.0, incorrect: float = -1.0):
        self.correct = correct
        self.incorrect = incorrect

    def __call__(
        self,
        completions: Sequence[Any],
        best: Sequence[Any] | None = None,
        label: Sequence[Any] | None = None,
        n: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        if n is None:
            raise ValueError("CorrectnessReward needs the dataset column 'n' (number of responses per prompt)")
        count = len(completions)
        best = best if best is not None else [None] * count
        label = label if label is not None else [None] * count
        out: list[float | None] = []
        for completion, b, lab, size in zip(completions, best, label, n, strict=True):
            size = int(size)
            b, lab = _opt(b), _opt(lab)
            low, high = score_range(single_label=size == 1 and lab is not None)
            parsed = extract_scores(completion_text(completion), size, low, high)
            ok = is_correct(parsed.scores, best=b, label=lab)
            out.append(self.correct if ok else self.incorrect)
        return out


correctness_reward = CorrectnessReward()


class GRMReward:
    """A trained GRM as a TRL reward function: scores policy completions with Voting@k (SPEC §5).

    ``pointwise`` (default) judges each completion alone (n = 1, scores 1..10); with ``group_size=G`` the G
    consecutive completions of one prompt (TRL's ``num_generations``) are judged together as n = G responses, each
    sample in a fresh shuffled order, which is how the GRM compares responses. The reward of a completion is its
    mean parsed score over the k samples, scaled to [0, 1] when ``normalize``; ``None`` (TRL: skip) when every
    sample failed to parse.

    Args:
        grm: a ``Sampler`` or a sampler spec (model dir, vllm:PATH), built lazily on first call. A running
            ``grm serve`` is a different class, ``grm.serving.client.RemoteGRMReward`` (async); the factory
            ``grm.integrations.trl.grm_reward(url_or_spec)`` picks between the two.
        k: samples per judgement (Voting@k).
        temperature: sampling temperature (paper: 0.5).
        max_new_tokens: generation budget per judgement.
        template: prompt template (``deepseek-grm`` for real models).
        seed: base seed; each call advances it so successive batches get fresh shuffles.
        group_size: judge groups of this many consecutive completions together; None = pointwise.
        normalize: map the 1..10 scale to [0, 1].
        remote: must be False for an ``http(s)://`` ``grm``: an OpenAI-compatible sampler URL (a ``grm serve`` URL is
            ``RemoteGRMReward``; the default refuses a URL rather than guess which one it is).

    Example::

        from trl import GRPOConfig, GRPOTrainer
        from grm.rewards import GRMReward
        reward = GRMReward("outputs/default/rl/model", k=4, group_size=4)  # or grm_reward("http://...", ...)
        trainer = GRPOTrainer(model=policy, reward_funcs=[reward], args=GRPOConfig(num_generations=4), ...)
    """

    __name__ = "grm_reward"

    def __init__(
        self,
        grm: Any,
        k: int = 4,
        temperature: float = 0.5,
        max_new_tokens: int = 512,
        template: str = "deepseek-grm",
        seed: int = 0,
        group_size: int | None = None,
        normalize: bool = True,
        sampler_options: dict[str, Any] | None = None,
        remote: bool | None = None,
    ):
        if isinstance(grm, str) and grm.startswith(("http://", "https://")) and remote is not False:
            raise ValueError(
                f"GRMReward({grm!r}): a running grm serve is judged by RemoteGRMReward; call "
                "grm.integrations.trl.grm_reward(url, ...) (or grm.serving.client.RemoteGRMReward(url, ...)), or pass "
                "remote=False for an OpenAI-compatible sampler URL"
            )
        if k < 1:
            raise ValueError(f"GRMReward k={k}: must be >= 1")
        if group_size is not None and group_size < 2:
            raise ValueError(f"GRMReward group_size={group_size}: use None for pointwise scoring or >= 2")
        self._grm = grm
        self.k = k
        self.temperature = temperature
        self.max_new_tokens = max_new_tokens
        self.template = template
        self.seed = seed
        self.group_size = group_size
        self.normalize = normalize
        self.sampler_options = sampler_options or {}
        self._calls = 0

    def _sampler(self) -> Any:
        if isinstance(self._grm, str):
            from grm.sampling import build_sampler

            self._grm = build_sampler(self._grm, **self.sampler_options)
        return self._grm

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        from grm.method import judging
        from grm.schemas import Item

        texts = [completion_text(c) for c in completions]
        queries = [p if isinstance(p, str) else tuple(p) for p in prompts]
        size = self.group_size or 1
        if len(texts) % size:
            raise ValueError(f"{len(texts)} completions do not split into groups of group_size={size}")
        items = []
        for g in range(0, len(texts), size):
            if len(set(map(str, queries[g : g + size]))) != 1:
                raise ValueError(f"completions {g}..{g + size - 1} do not share one prompt; check group_size")
            items.append(
                Item(
                    f"c{g}",
                    queries[g],
                    tuple(texts[g : g + size]),
                    best=0 if size > 1 else None,
                    label=None if size > 1 else 0,
                )
            )
        self._calls += 1
        results = judging.judge_items(
            items,
            self._sampler(),
            k=self.k,
            temperature=self.temperature,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed + self._calls,
            template=self.template,
        )
        rewards: list[float | None] = []
        for res in results:
            parsed = [s.scores for s in res.samples if s.scores is not None]
            for i in range(res.n):
                if not parsed:
                    rewards.append(None)
                    continue
                mean = sum(s[i] for s in parsed) / len(parsed)
                rewards.append((mean - 1) / 9 if self.normalize else mean)
        return rewards
