"""The paper's rules: prompts, parsing, correctness, voting, verdicts, judging (pure)."""
