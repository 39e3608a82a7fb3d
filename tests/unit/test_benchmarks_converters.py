"""Converters: real rows of the shipped copy (RMB's real counts: a full copy, skipped without one), hub-schema rows,
bad rows, registry behaviour."""

from __future__ import annotations

import collections
import json

import datasets
import pytest

from grm.benchmarks import (
    BenchmarkSpec,
    available,
    convert_rows,
    get_benchmark,
    helpsteer2,
    load_benchmark,
    load_hub,
    ppe,
    register,
    resolve_benchdata,
)
from grm.schemas import DataError
from tests.helpers.benchdata import FULL, SHIPPED, needs_full_rmb, with_rmb

BENCHDATA = SHIPPED


# ---------------------------------------------------------------- registry


def test_registering_a_name_twice_raises():
    spec = get_benchmark("rewardbench")
    with pytest.raises(ValueError, match="already registered"):
        register(BenchmarkSpec(name="rewardbench", description="dup", convert=spec.convert))


def test_unknown_benchmark_lists_the_available_ones():
    with pytest.raises(KeyError, match=r"Unknown benchmark 'nope'\. Available: .*rewardbench"):
        get_benchmark("nope")


def test_available_separates_local_benchmarks_and_training_sets():
    assert available("benchmark", local=True) == [
        "gsm8k-pairs",
        "judgebench",
        "judgebench-claude",
        "realmistake",
        "rewardbench",
        "rm-bench",
        "rmb",
    ]
    assert set(available("training")) == {
        "helpsteer2-preference",
        "math-pairs",
        "offsetbias",
        "skywork-preference",
        "ultrafeedback-binarized",
    }


def test_hub_only_benchmark_refuses_a_local_load_and_names_the_hub_dataset(tmp_path):
    with pytest.raises(ValueError, match="lmarena-ai/PPE-Human-Preference-V1"):
        load_benchmark("ppe-preference", tmp_path)


def test_missing_benchdata_folder_names_the_option_and_env_var(tmp_path):
    with pytest.raises(FileNotFoundError, match="--benchdata DIR or set GRM_BENCHDATA"):
        resolve_benchdata(tmp_path / "absent")


# ---------------------------------------------------------------- real local rows


def test_rewardbench_local_copy_has_2985_pairs_in_23_subsets_chosen_first():
    items = load_benchmark("rewardbench", BENCHDATA, progress=False)
    assert len(items) == 2985
    counts = collections.Counter(it.subset for it in items)
    assert len(counts) == 23 and counts["math-prm"] == 447 and counts["hep-go"] == 164
    assert all(it.best == 0 and it.n == 2 for it in items)
    assert items[0].id.startswith("rewardbench/alpacaeval-easy/")


def test_limit_spreads_items_over_subsets():
    items = load_benchmark("rewardbench", BENCHDATA, limit=46, progress=False)
    assert len(items) == 46
    assert len({it.subset for it in items}) == 23  # round-robin: two per subset


@needs_full_rmb
def test_rmb_reads_files_with_spaces_and_reports_its_bad_rows_by_file_and_record():
    with pytest.raises(DataError) as info:
        load_benchmark("rmb", FULL, progress=False)
    errors = info.value.errors
    assert len(errors) == 7
    assert any("GeneralExcerpt Language Translation.json:30: conversation_input[2].content" in e for e in errors)
    assert any("Harmlessness/S5.json:397: reject.answer: empty string" in e for e in errors)
    skipped: list[str] = []
    items = load_benchmark("rmb", FULL, progress=False, skipped=skipped)
    assert skipped == errors
    sections = collections.Counter(it.meta["section"] for it in items)
    assert sections["bon_helpfulness"] == 2109 and sections["bon_harmlessness"] == 1677  # BoN is complete
    assert sections["pairwise_helpfulness"] + sections["pairwise_harmlessness"] == 14543 - 7
    bon = next(it for it in items if it.meta["section"] == "bon_helpfulness")
    assert bon.best == 0 and bon.n >= 2 and "language" not in json.dumps(bon.query)


def test_rmb_limit_covers_all_four_sections(tmp_path):  # the full copy, else the stand-in in RMB's layout
    items = load_benchmark("rmb", with_rmb(tmp_path), limit=8, progress=False)
    assert collections.Counter(it.meta["section"] for it in items) == {
        "pairwise_helpfulness": 2,
        "pairwise_harmlessness": 2,
        "bon_helpfulness": 2,
        "bon_harmlessness": 2,
    }


def test_gsm8k_gives_2429_correct_over_incorrect_pairs():
    items = load_benchmark("gsm8k-pairs", BENCHDATA, progress=False)
    assert len(items) == 2429
    assert len({it.meta["question_index"] for it in items}) == 731


def test_realmistake_is_read_from_the_zip_with_no_error_as_label_1():
    items = load_benchmark("realmistake", BENCHDATA, progress=False)
    assert len(items) == 900
    assert collections.Counter(it.label for it in items) == {0: 649, 1: 251}
    assert all(it.n == 1 for it in items)


# ---------------------------------------------------------------- hub-schema rows


def _ds(rows):
    return datasets.Dataset.from_list(rows)


def test_rewardbench_hub_rows_convert_like_local_rows():
    rows = [
        {"prompt": "p", "chosen": "c", "chosen_model": "m1", "rejected": "r", "rejected_model": "m2",
         "subset": "hep-go", "id": 7},
    ]  # fmt: skip
    (item,) = convert_rows("rewardbench", _ds(rows))
    assert (item.id, item.responses, item.best, item.subset) == ("rewardbench/hep-go/7", ("c", "r"), 0, "hep-go")


def test_bad_rows_are_all_reported_with_location_field_and_problem():
    rows = [
        {"prompt": "p", "chosen": "c", "rejected": "r", "subset": "s", "id": 1},
        {"prompt": "", "chosen": "c", "rejected": "r", "subset": "s", "id": 2},
        {"prompt": "p", "chosen": "c", "rejected": None, "subset": "s", "id": 3},
        {"prompt": "p", "chosen": "c", "rejected": "r", "subset": "s", "id": 1},
    ]
    with pytest.raises(DataError) as info:
        convert_rows("rewardbench", rows, source="rb.jsonl")
    assert info.value.errors == [
        "rb.jsonl:2: prompt: empty string",
        "rb.jsonl:3: rejected: missing; the row has fields ['chosen', 'id', 'prompt', 'rejected', 'subset']",
        "rb.jsonl:4: id: duplicate converted id 'rewardbench/s/1' (first at rb.jsonl:1)",
    ]


def test_bad_json_line_in_a_local_file_is_reported(tmp_path):
    folder = tmp_path / "rewardbench"
    folder.mkdir()
    good = {"prompt": "p", "chosen": "c", "rejected": "r", "subset": "s", "id": 1}
    (folder / "rewardbench_filtered.jsonl").write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(DataError, match=r"rewardbench_filtered.jsonl:2: <json>: invalid JSON"):
        load_benchmark("rewardbench", tmp_path, progress=False)


def test_rmb_rows_use_reject_and_strip_language():
    conv = [{"role": "user", "content": "q", "language": "English"}]
    pair = {
        "pair_uid": "9",
        "conversation_input": conv,
        "chosen": {"llm_name": "a", "answer": "good"},
        "reject": {"llm_name": "b", "answer": "bad"},
        "category_path": "Pairwise_set/Helpfulness/Chat/Discussion",
    }
    bon = {"bon_uid": "3", "conversation_input": conv, "bon_best": {"llm_name": "a", "answer": "best"},
           "loser_list": [{"llm_name": "b", "answer": "l1"}, {"llm_name": "c", "answer": "l2"}],
           "category_path": "BoN_set/Harmlessness/S1"}  # fmt: skip
    a, b = convert_rows("rmb", [pair, bon])
    assert a.query == "q" and a.responses == ("good", "bad") and a.meta["section"] == "pairwise_helpfulness"
    assert a.id == "rmb/Pairwise_set/Helpfulness/Chat/Discussion/9"
    assert b.responses == ("best", "l1", "l2") and b.best == 0 and b.meta["section"] == "bon_harmlessness"
    wrong_key = dict(pair, rejected=pair["reject"])
    del wrong_key["reject"]
    with pytest.raises(DataError, match="reject: missing; RMB calls the rejected answer 'reject'"):
        convert_rows("rmb", [wrong_key])


def test_rmb_multi_turn_context_stays_a_transcript():
    conv = [
        {"role": "user", "content": "hi", "language": "English"},
        {"role": "assistant", "content": "hello", "language": "English"},
        {"role": "user", "content": "more", "language": "English"},
    ]
    row = {"pair_uid": "1", "conversation_input": conv, "chosen": {"answer": "x"}, "reject": {"answer": "y"},
           "category_path": "Pairwise_set/Harmlessness/multi"}  # fmt: skip
    (item,) = convert_rows("rmb", [row])
    assert item.query == (
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "more"},
    )


def test_realmistake_rows_map_error_labels():
    row = {"input": "task", "llm_response": "answer", "error_label": "error", "error_categories": ["Reasoning"],
           "metadata": {"id": "m_1", "task_name": "math_problem_generation", "llm_response_model": "gpt-4-0613"}}  # fmt: skip
    (item,) = convert_rows("realmistake", [row])
    assert (item.label, item.id) == (0, "realmistake/math_problem_generation/m_1")
    with pytest.raises(DataError, match="error_label: 'maybe' is not one of"):
        convert_rows("realmistake", [dict(row, error_label="maybe")])


def test_gsm8k_rows_pair_every_correct_with_every_incorrect_solution():
    row = {"question": "q", "ground_truth": "A: 1"}
    for solver, ok in zip(("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"),
                          (True, False, True, False), strict=True):  # fmt: skip
        row[solver] = {"is_correct": ok, "solution": f"{solver} says"}
    items = convert_rows("gsm8k-pairs", [row])
    assert len(items) == 4 and all(it.best == 0 for it in items)
    assert items[0].responses == ("6b_finetuning says", "6b_verification says")


def test_ppe_preference_rows_drop_ties_and_map_the_winner():
    base = {"question_id": "q", "prompt": "p", "response_1": "a", "response_2": "b", "model_a": "x", "model_b": "y",
            "language": "English"}  # fmt: skip
    rows = [dict(base, winner="model_b"), dict(base, winner="tie"), dict(base, winner="tie (bothbad)")]
    items = convert_rows("ppe-preference", _ds(rows))
    assert [(it.id, it.best) for it in items] == [("ppe-preference/human/q-0", 1)]


def test_ppe_correctness_rows_become_conflict_pairs():
    row = {"question_id": "q1", "prompt": "p", "response_1": "r1", "response_2": "r2", "response_3": "r3",
           "scores": [True, False, True], "sampled_conflict_pairs": [[0, 1], [1, 2], [0, 2]]}  # fmt: skip
    spec = get_benchmark("ppe-correctness")
    gpqa = next(h for h in spec.hub if h.path.endswith("GPQA-Best-of-K"))
    items = convert_rows("ppe-correctness", _ds([row]), convert=gpqa.convert)
    assert [(it.id, it.responses, it.best) for it in items] == [
        ("ppe-correctness/gpqa/q1:0-1", ("r1", "r2"), 0),
        ("ppe-correctness/gpqa/q1:1-2", ("r2", "r3"), 1),
    ]  # the (0, 2) pair has equal scores and is skipped
    assert set(ppe.CORRECTNESS_SUBSETS) == {"mmlu-pro", "math", "gpqa", "mbpp-plus", "ifeval"}


def test_helpsteer2_rows_use_the_sign_of_the_strength_and_split_turns():
    prompt = "first<extra_id_1>Assistant\nreply<extra_id_1>User\nsecond"
    rows = [
        {"split": "train", "prompt": prompt, "response_1": "a", "response_2": "b", "preference_strength": 2},
        {"split": "val", "prompt": "q", "response_1": "a", "response_2": "b", "preference_strength": -1},
        {"split": "val", "prompt": "q", "response_1": "a", "response_2": "b", "preference_strength": 0},
    ]
    first, second = convert_rows("helpsteer2-preference", _ds(rows))
    assert first.best == 1 and first.query[-1] == {"role": "user", "content": "second"} and len(first.query) == 3
    assert second.best == 0 and second.query == "q" and second.id == "helpsteer2-preference/val/1"
    assert helpsteer2.split_turns("x")[0]["content"] == "x"


def test_skywork_and_ultrafeedback_rows_split_the_shared_context():
    chosen = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}]
    rejected = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}]
    (sky,) = convert_rows("skywork-preference", _ds([{"chosen": chosen, "rejected": rejected, "source": "s"}]))
    assert (sky.query, sky.responses, sky.id) == ("q", ("good", "bad"), "skywork-preference/s/0")
    uf_rows = [
        {"prompt": "q", "prompt_id": "abc", "chosen": chosen, "rejected": rejected, "messages": chosen,
         "score_chosen": 8.0, "score_rejected": 3.0},
        {"prompt": "q", "prompt_id": "tie", "chosen": chosen, "rejected": rejected, "messages": chosen,
         "score_chosen": 5.0, "score_rejected": 5.0},
    ]  # fmt: skip
    (uf,) = convert_rows("ultrafeedback-binarized", _ds(uf_rows))
    assert uf.ratings == (8.0, 3.0) and uf.id == "ultrafeedback-binarized/train_prefs/abc"
    other = [{"role": "user", "content": "different"}, {"role": "assistant", "content": "bad"}]
    with pytest.raises(DataError, match="rejected: its context differs"):
        convert_rows("skywork-preference", [{"chosen": chosen, "rejected": other}])


def test_offsetbias_and_math_pairs_rows():
    (ob,) = convert_rows("offsetbias", _ds([{"instruction": "i", "output_1": "a", "output_2": "b", "label": 2}]))
    assert ob.best == 1
    with pytest.raises(DataError, match="label: 3 is not 1 or 2"):
        convert_rows("offsetbias", [{"instruction": "i", "output_1": "a", "output_2": "b", "label": 3}])
    row = {"dataset": "MATH", "prompt": "p", "initial_reason_steps": "s", "chosen": "c", "rejected": "r",
           "full_chosen": "s c", "full_rejected": "s r", "answer": "4"}  # fmt: skip
    (mp,) = convert_rows("math-pairs", _ds([row]))
    assert (mp.responses, mp.id, mp.meta["answer"]) == (("s c", "s r"), "math-pairs/MATH/0", "4")


def test_load_hub_streams_every_source_through_its_converter(monkeypatch):
    calls = []
    row = {"question_id": "q", "prompt": "p", "response_1": "a", "response_2": "b", "scores": [1.0, 0.0],
           "sampled_conflict_pairs": [[0, 1]]}  # fmt: skip

    def fake_load_dataset(path, name=None, data_dir=None, split=None, streaming=False):
        calls.append((path, split, streaming))
        return _ds([row])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    items = load_hub("ppe-correctness")
    assert len(calls) == 5 and all(streaming for _, _, streaming in calls)
    assert sorted(it.subset for it in items) == sorted(ppe.CORRECTNESS_SUBSETS)
    assert len(load_hub("ppe-correctness", limit=2)) == 2
