"""grm.serving.texts: the tolerant prompt/response split, stop-token stripping and cuts."""

from __future__ import annotations

from grm.serving.texts import cut, split_query, stop_tokens, strip_stop_tokens


def test_split_exact_whitespace_truncated_found_and_none():
    p = "What is 17 + 25 ? Think ."
    assert split_query(p + " 42", p).how == "exact"
    s = split_query("What is 17 + 25? Think. 42", p)
    assert (s.how, s.response.strip()) == ("whitespace", "42")
    s = split_query("What is 17 + 25 ? Th 42", p)  # cut by the trainer after "Th"
    assert (s.how, s.response.strip()) == ("prompt_truncated", "42")
    s = split_query("<|im_start|>user\n" + p + "<|im_end|>\n42", p)
    assert (s.how, s.response) == ("found", "<|im_end|>\n42")
    s = split_query("7 + 25 ? Think . 42", p)  # the trainer kept the prompt's last tokens (OpenRLHF 0.11)
    assert (s.how, s.response.strip()) == ("prompt_tail", "42")
    assert split_query("Think . 42", p) is None  # too short a common tail to trust
    assert split_query("completely different text", p) is None
    assert split_query("Wh 42", p) is None  # too short a common prefix to trust


def test_strip_stop_tokens_only_at_the_ends():
    tokens = stop_tokens()
    assert strip_stop_tokens("42</s>", tokens) == ("42", True)
    assert strip_stop_tokens("<s> 42 <|im_end|>\n<pad><pad>", tokens) == ("42", True)
    assert strip_stop_tokens("a </s> b", tokens) == ("a </s> b", False)
    assert strip_stop_tokens("  42 ", tokens) == ("42", False)


def test_cut_keeps_the_head():
    assert cut("abcdef", 4) == ("abcd", True) and cut("ab", 4) == ("ab", False)
