"""``style_matrix`` (RM-Bench, ``scripts/utils.py::compute_accuracy`` @ 73c52d7), for a GRM and for a scalar RM.

A prompt's 3 chosen x 3 rejected responses become the nine (chosen_i, rejected_j) comparisons; each is a
two-response item, judged by the standard protocol (greedy over a seeded order, its reverse, Voting@k over
per-sample shuffles), so every one of the official nine comparisons is a real, independent verdict, not one
same-style verdict copied across a row of the matrix (RM-R1's generative adaptation). Rating the six responses in
one judgement would be 9x cheaper, but a 6-response prompt is far longer than the pairs the GRM is trained and
evaluated on, and every comparison would then share one sample's noise. A scalar RM's six scores per prompt
(chosen 0-2, rejected 0-2) are expanded into the same nine comparisons (``score_chosen[i] > score_rejected[j]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from grm.benchmarks.rmbench import style_pairs
from grm.eval.judge import check_scores
from grm.eval.protocols.base import EvalProtocol, MetaScorer
from grm.eval.protocols.standard import evaluate_standard, score_standard
from grm.eval.spec import STANDARD, EvalReport, EvalSpec
from grm.sampling.base import Sampler
from grm.schemas import Item

STYLE_NOTE = (
    "per domain the official 3x3 matrix of the nine (chosen_i, rejected_j) comparisons; hard / normal / easy = its "
    "upper triangle / diagonal / lower triangle; overall = mean of the domain scores; style_bias = easy - hard (ours)"
)


def expand_style_items(items: Sequence[Item]) -> list[Item]:
    """RM-Bench prompts -> their nine (chosen_i, rejected_j) comparison items each (``rmbench.style_pairs``)."""
    return [pair for it in items for pair in style_pairs(it)]


def _pair_spec(spec: EvalSpec) -> EvalSpec:
    return spec.replace(scorer=spec.resolved_scorer(), protocol=STANDARD)


def evaluate_style_matrix(
    items: Sequence[Item], sampler: Sampler, spec: EvalSpec, meta_scorer: MetaScorer | None
) -> EvalReport:
    """RM-Bench for a sampler-backed GRM: the nine comparisons of each prompt through the standard protocol (every
    setting of ``spec`` as there), scored by the 3x3 matrix (``scorer="rm_bench"``)."""
    report = evaluate_standard(expand_style_items(items), sampler, _pair_spec(spec), meta_scorer)
    report.settings.update(protocol="style_matrix", n_prompts=len(items), note=STYLE_NOTE)
    return report


def score_style_matrix(
    items: Sequence[Item], scores: Mapping[str, Sequence[float]], spec: EvalSpec, source: str
) -> EvalReport:
    """RM-Bench for a scalar RM: six scores per prompt (chosen 0-2, rejected 0-2) -> the nine comparisons, scored
    like the standard protocol's scalar scores (tie per its policy; official: strict) and the 3x3 matrix."""
    check_scores(items, scores, source)
    pair_scores = {}
    for it in items:
        s = list(scores[it.id])
        for pair in style_pairs(it):
            pair_scores[pair.id] = [s[pair.meta["chosen_style"]], s[3 + pair.meta["rejected_style"]]]
    report = score_standard(expand_style_items(items), pair_scores, _pair_spec(spec), source)
    report.settings.update(protocol="style_matrix", n_prompts=len(items), note=STYLE_NOTE)
    return report


PROTOCOL = EvalProtocol(
    "style_matrix",
    evaluate_style_matrix,
    score_style_matrix,
    swap_cell=True,
    description="RM-Bench: the nine chosen_i-vs-rejected_j pairs of a prompt, the 3x3 matrix",
)
