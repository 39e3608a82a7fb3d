"""RM-Bench: converter (local domain files, pooled safety, bad rows), the 3x3 matrix, the GRM's nine pairs, scores."""

from __future__ import annotations

import collections
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from grm.benchmarks import convert_rows, load_benchmark
from grm.benchmarks.rmbench import style_pairs
from grm.benchmarks.scoring import rm_bench_scores, style_levels, style_matrix
from grm.eval.run import evaluate
from grm.eval.spec import EvalSpec
from grm.schemas import DataError, Item
from tests.helpers.benchdata import SHIPPED
from tests.unit.test_benchmarks_evaluation import RESPONSE_RE, _app

BENCHDATA = SHIPPED  # the copy shipped in the repository (docs/benchdata.md)
STYLES = ("short", "long plain", "long **markdown**")


def prompt_row(pid=1, domain="chat", **extra):
    base = {"id": pid, "subset": "alpacaeval", "prompt": f"prompt {pid}", "domain": domain,
            "chosen": [f"ok {s}" for s in STYLES], "rejected": [f"bad {s}" for s in STYLES]}  # fmt: skip
    return {**base, **extra}


def official_compute_accuracy(results):
    """THU-KEG/RM-Bench scripts/utils.py::compute_accuracy (73c52d7), transcribed: hard, normal, easy."""
    m = np.zeros((3, 3))
    for r in results:
        for i in range(3):
            for j in range(3):
                if r["score_chosen"][i] > r["score_rejected"][j]:
                    m[i][j] += 1
    m /= len(results)
    hard = np.sum(np.triu(m, 1)) / 3
    normal = np.mean(np.diag(m))
    easy = np.sum(np.tril(m, -1)) / 3
    return hard, normal, easy


# ---------------------------------------------------------------- converter


def test_local_files_pool_the_two_safety_files_into_one_domain():
    items = load_benchmark("rm-bench", BENCHDATA, progress=False)
    assert collections.Counter(it.subset for it in items) == {"chat": 129, "code": 228, "safety": 441}
    files = collections.Counter(it.meta["source_file"] for it in items if it.subset == "safety")
    assert files == {"safety-refuse": 284, "safety-response": 157}
    assert all(it.n == 6 and it.best == 0 and it.id.startswith(f"rm-bench/{it.subset}/") for it in items)
    first = items[0]
    assert first.id == "rm-bench/chat/8" and "_file" not in first.meta


def test_a_math_file_is_read_when_present(tmp_path):
    data = tmp_path / "rm-bench" / "data"
    data.mkdir(parents=True)
    (data / "math_filtered.json").write_text(json.dumps([prompt_row(5, subset="math")]))
    (item,) = load_benchmark("rm-bench", tmp_path, progress=False)
    assert (item.id, item.subset, item.meta["source_file"]) == ("rm-bench/math/5", "math", "math")


def test_hub_rows_take_the_domain_field_and_keep_chosen_then_rejected():
    (item,) = convert_rows("rm-bench", [prompt_row(3, domain="safety-response")])
    assert item.id == "rm-bench/safety/3" and item.subset == "safety"
    assert item.responses == tuple(f"ok {s}" for s in STYLES) + tuple(f"bad {s}" for s in STYLES)


def test_malformed_rows_are_all_reported():
    rows = [
        prompt_row(1),
        prompt_row(2, chosen=["a", "b"]),
        prompt_row(3, rejected=["a", " ", "c"]),
        prompt_row(4, domain="poetry"),
        {k: v for k, v in prompt_row(5).items() if k != "domain"},
    ]
    with pytest.raises(DataError) as info:
        convert_rows("rm-bench", rows, source="rm.json")
    assert info.value.errors == [
        "rm.json:2: chosen: expected 3 responses (concise, detailed plain, markdown), got 2",
        "rm.json:3: rejected[1]: missing or empty response",
        "rm.json:4: domain: 'poetry' does not start with one of ['chat', 'math', 'code', 'safety']",
        "rm.json:5: domain: missing; the row has fields ['chosen', 'id', 'prompt', 'rejected', 'subset']",
    ]


def test_style_pairs_are_the_nine_chosen_rejected_comparisons():
    (item,) = convert_rows("rm-bench", [prompt_row(1)])
    pairs = style_pairs(item)
    assert len(pairs) == 9 and pairs[5].id == "rm-bench/chat/1/c1r2"
    assert pairs[5].responses == ("ok long plain", "bad long **markdown**") and pairs[5].best == 0
    assert (pairs[5].meta["chosen_style"], pairs[5].meta["rejected_style"]) == (1, 2)


# ---------------------------------------------------------------- the matrix


def test_matrix_by_hand_with_a_tie_counted_wrong():
    # prompt 1: chosen (3, 5, 7), rejected (2, 4, 6); prompt 2: chosen (1, 1, 1), rejected (1, 0, 0)
    # prompt 1: c0 > r0 only; c1 > r0, r1; c2 > all.  prompt 2: c_i > r1, r2 (c_i = r0 is a tie -> 0)
    # M = [[1/2, 1/2, 1/2], [1/2, 1, 1/2], [1/2, 1, 1]] -> hard (1/2+1/2+1/2)/3, normal (1/2+1+1)/3,
    # easy (1/2+1/2+1)/3
    chosen, rejected = [(3, 5, 7), (1, 1, 1)], [(2, 4, 6), (1, 0, 0)]
    credits, ci, rj, items = [], [], [], []
    for p in range(2):
        for i in range(3):
            for j in range(3):
                credits.append(float(chosen[p][i] > rejected[p][j]))
                ci.append(i)
                rj.append(j)
                items.append(Item(f"x/{p}/{i}{j}", "q", ("a", "b"), best=0, meta={"domain": "chat",
                                  "chosen_style": i, "rejected_style": j}))  # fmt: skip
    m = style_matrix(credits, ci, rj)
    assert m.tolist() == [[0.5, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 1.0, 1.0]]
    lv = style_levels(m)
    assert (lv["hard"], lv["normal"], lv["easy"]) == pytest.approx((0.5, 2.5 / 3, 2 / 3))
    assert lv["style_bias"] == pytest.approx(1 / 6)
    results = [{"score_chosen": c, "score_rejected": r} for c, r in zip(chosen, rejected, strict=True)]
    assert (lv["hard"], lv["normal"], lv["easy"]) == pytest.approx(official_compute_accuracy(results))
    out = rm_bench_scores(items, credits)
    assert out["chat"] == pytest.approx(lv["score"]) == out["overall"] and out["chat/m12"] == 0.5


def test_overall_is_the_mean_of_domain_scores_not_of_prompts():
    def items_for(domain, n, credit):
        return [(Item(f"{domain}/{p}/{i}{j}", "q", ("a", "b"), best=0,
                      meta={"domain": domain, "chosen_style": i, "rejected_style": j}), credit)
                for p in range(n) for i in range(3) for j in range(3)]  # fmt: skip

    rows = items_for("chat", 1, 1.0) + items_for("safety", 3, 0.0)
    out = rm_bench_scores([r[0] for r in rows], [r[1] for r in rows])
    assert out["chat"] == 1.0 and out["safety"] == 0.0 and out["overall"] == 0.5  # not 1/4 (pooled prompts)
    assert out["n_subsets"] == 2.0


# ---------------------------------------------------------------- scalar scores and the GRM


def test_grm_eval_scores_file_matches_the_official_compute_accuracy(tmp_path):
    items = load_benchmark("rm-bench", BENCHDATA, limit=24, progress=False)
    rng = np.random.default_rng(0)
    lines, by_domain = [], collections.defaultdict(list)
    for it in items:
        s = [float(x) for x in rng.integers(0, 4, 6)]  # small integers: ties, counted wrong
        lines.append(json.dumps({"id": it.id, "scores": s}))
        by_domain[it.subset].append({"score_chosen": s[:3], "score_rejected": s[3:]})
    path = tmp_path / "rm.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "report"
    args = ["eval", "-b", "rm-bench", "--scores-file", str(path), "--limit", "24", "--tie-policy", "official",
            "--output", str(out), "--benchdata", str(BENCHDATA)]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    prefix = "eval/rm-bench/rm/scalar_k1"
    scores = {}
    for domain, results in by_domain.items():
        hard, normal, easy = official_compute_accuracy(results)
        scores[domain] = (hard + normal + easy) / 3
        assert metrics[f"{prefix}/{domain}"] == pytest.approx(scores[domain])
        assert metrics[f"{prefix}/{domain}/hard"] == pytest.approx(hard)
        assert metrics[f"{prefix}/{domain}/style_bias"] == pytest.approx(easy - hard)
    assert metrics[f"{prefix}/overall"] == pytest.approx(np.mean(list(scores.values())))
    assert metrics[f"{prefix}/tie_rate"] > 0


class LengthBiasedSampler:
    """Prefers the longer response whatever its substance (a style-biased judge)."""

    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        out = []
        for p in prompts:
            lengths = [len(t) for _, t in RESPONSE_RE.findall(p)]
            top = max(lengths)
            scores = ["9" if x == top else "2" for x in lengths]
            out.append(["Scores: \\boxed{" + ", ".join(scores) + "}"] * n)
        return out


def test_grm_judges_nine_pairs_per_prompt_and_the_style_bias_shows_a_length_bias():
    items = convert_rows("rm-bench", [prompt_row(p) for p in range(3)])
    report = evaluate(items, LengthBiasedSampler(), EvalSpec(benchmark="rm-bench", model_name="len", ks=(1, 2)))
    assert report.n_items == 27 and report.settings["n_prompts"] == 3 and report.settings["protocol"] == "style_matrix"
    for cell in ("greedy_k1", "greedy_swap_k1", "voting_k2"):
        m = report.cells[cell]
        # "bad" is one character longer than "ok": the same style loses, a longer chosen style wins
        assert (m["hard"], m["normal"], m["easy"]) == (0.0, 0.0, 1.0)
        assert m["style_bias"] == 1.0 == m["chat/style_bias"] and m["overall"] == pytest.approx(1 / 3)
    assert report.cells["greedy_k1"]["position_flip_rate"] == 0.0


def test_a_six_response_item_is_refused_outside_its_protocol():
    items = convert_rows("rm-bench", [prompt_row(1)])
    pair = Item("x", "q", ("a", "b"), best=0)
    with pytest.raises(ValueError, match="3 chosen \\+ 3 rejected"):
        style_pairs(pair)
    assert re.match(r"rm-bench/chat/1$", items[0].id)
