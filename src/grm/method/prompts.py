"""Prompt templates (SPEC §8). ``deepseek-grm`` reproduces the paper's format byte for byte (typos included):
§8.1 (default, n >= 1, with the optional hint line) and §8.2 (single-response 0/1 training template, verbatim;
note it has no blank line before ``#### Conversation Context ####``). tests/unit/test_prompts.py compares the
rendered text with the whole SPEC text (copies in tests/fixtures/).

``compact`` keeps the same output contract (``Specific Criteria: ... Analysis: ... Scores: \\boxed{..}``) around
a short input, for the embedded tiny world where every prompt token costs CPU time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Query = str | Sequence[dict[str, str]]

DEFAULT_CRITERIA = """#### Evaluation Criteria ####
1. Instruction Adherence:
   - Fully Adhered (9-10 points): The response fully complies with all instructions and requirements of the question.
   - Partially Adhered (6-8 points): The response meets most of the instructions but has some omissions or misunderstandings.
   - Basically Adhered (3-5 points): The response meets some instructions, but the main requirements are not fulfilled.
   - Not Adhered (1-2 points): The response does not meet any instructions.
   Example: If the question requires three examples and the response provides only one, it falls under "Partially Adhered."
2. Usefulness:
   - Highly Useful (9-10 points): The response provides comprehensive and accurate information, fully addressing the issue.
   - Useful but Incomplete (6-8 points): The response provides some useful information, but lacks details or accuracy.
   - Limited Usefulness (3-5 points): The response offers little useful information, with most content being irrelevant or incorrect.
   - Useless or Incorrect (1-2 points): The response is completely irrelevant or incorrect.
   Example: If there are factual errors in the response but the overall direction is correct, it falls under "Useful but Incomplete."
3. Level of Detail:
   - Very Detailed (9-10 points): The response includes ample details covering all aspects of the issue.
   - Detailed but Slightly Lacking (6-8 points): The response is fairly detailed but misses some important details.
   - Basically Detailed (3-5 points): The response provides some details but is not thorough enough overall.
   - Not Detailed (1-2 points): The response is very brief and lacks necessary details.
   Example: If the response provides only a simple conclusion without an explanation, it falls under "Not Detailed."
4. Relevance:
   - Highly Relevant (9-10 points): The response is highly relevant to the question, with information closely aligned with the topic.
   - Generally Relevant (6-8 points): The response is generally relevant but includes some unnecessary information.
   - Partially Relevant (3-5 points): The response has a lot of content that deviates from the topic.
   - Not Relevant (1-2 points): The response is completely irrelevant.
   Example: If the response strays from the topic but still provides some relevant information, it falls under "Partially Relevant."
"""

DEFAULT_HEADER = (
    "You are a skilled little expert at scoring responses. You should evaluate given responses based on the given "
    "judging criteria.\n"
    "Given the context of the conversation (the last round is the User's query) and multiple responses from the "
    "Assistant, you need to refer to the [General Evaluation Criteria] to score the responses. Based on the general "
    "evaluation criteria, state potential other specific criteria to the query, the weights of different criteria, "
    "and then provide an overall comprehensive score upon them.\n"
    "Each score is an integer between 1 and 10, with a higher score indicating that the response meets the relevant "
    "criteria more closely. For example, a score of 1 means the response does not meet the criteria at all, a score "
    "of 6 means the response meets only some parts, and a score of 10 means the response perfectly meets the "
    "evaluation criteria.\n"
    "Before scoring, please analyze step by step. Your scoring needs to be as strict as possible.\n"
    "\n"
)

DEFAULT_OUTPUT = (
    "#### Output Format Requirements ####\n"
    "Output with three lines\n"
    "Specific Criteria: <Other potential criteria specific to the query and the context, and the weights of each "
    "criteria>.\n"
    "Analysis: <Compare different responses based on given Criteria>.\n"
    "Scores: <the overall comprehensive score of all responses in order, separate by comma in the boxed, e.g., "
    "\\boxed{x, x} if there exists 2 responeses>."
)

SINGLE_HEADER = (
    "You are a skilled little expert at scoring responses. You should evaluate given responses based on the given "
    "judging criteria.\n"
    "Given the context of the conversation (the last round is the User's query) and multiple responses from the "
    "Assistant, you need to refer to the [General Evaluation Criteria] to score the responses. Based on the general "
    "evaluation criteria, state potential other specific criteria to the query, the weights of different criteria, "
    "and then provide an overall comprehensive score upon them. The score is 0 or 1, with 1 indicating that the "
    "response is correct.\n"
    "Before scoring, please analyze step by step. Your scoring needs to be as strict as possible.\n"
    "\n"
)

SINGLE_CRITERIA = """#### Evaluation Criteria ####
1. Instruction Adherence:
   - Fully Adhered: The response fully complies with all instructions and requirements of the question.
   - Partially Adhered: The response meets most of the instructions but has some omissions or misunderstandings.
   - Basically Adhered: The response meets some instructions, but the main requirements are not fulfilled.
   - Not Adhered: The response does not meet any instructions.
   Example: If the question requires three examples and the response provides only one, it falls under "Partially Adhered."
2. Clarity:
   - Very Clear: The response is fluent, well-structured, and logically clear.
   - Clear but Minor Issues: The response is mostly clear but has some minor language or structural issues.
   - Basically Clear: The response has noticeable language or logic issues but is still understandable.
   - Not Clear: The response is disjointed, illogical, and hard to understand.
   Example: If the response has complex sentence structures and lacks punctuation, it falls under "Basically Clear" or "Not Clear."
3. Accuracy:
   - Completely Accurate: All information and data are completely accurate.
   - Mostly Accurate: Most information is accurate, with minor errors.
   - Some Errors: There are some noticeable errors affecting comprehension.
   - Mostly Incorrect: There are numerous errors seriously affecting the credibility of the information.
   Example: If a specific data point is incorrectly cited but doesn't affect the overall conclusion, it falls under "Mostly Accurate."
"""

SINGLE_OUTPUT = (
    "#### Output Format Requirements ####\n"
    "Output with three lines\n"
    "Specific Criteria: <Other potential criteria specific to the query and the context, and the weights of each "
    "criteria>. Analysis: <Compare different responses based on given Criteria>. Scores: <the overall comprehensive "
    "score of the response, e.g., \\boxed{x}>."
)

HINT_LINE = "The best response is: Response {j}"
PRINCIPLES_MARK = "Specific Criteria:"  # where a judgement's principles start (before "Analysis:")
PRINCIPLES_OUTPUT = (
    "#### Output Format Requirements ####\n"
    "Output one line\n"
    "Specific Criteria: <Other potential criteria specific to the query and the context, and the weights of each "
    "criteria>."
)
TEMPLATES = ("deepseek-grm", "compact")


def render_conversation(query: Query) -> str:
    """A query string as-is; a chat transcript as ``Role: content`` turns, one per line. [choice]"""
    if isinstance(query, str):
        return query
    return "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in query)


def _check_template(template: str) -> None:
    if template not in TEMPLATES:
        raise ValueError(f"Unknown template {template!r}. Available: {', '.join(TEMPLATES)}")


def score_range(single_label: bool = False) -> tuple[int, int]:
    """(low, high) of valid scores: 0..1 for the single-response training template, 1..10 otherwise."""
    return (0, 1) if single_label else (1, 10)


def render_prompt(
    query: Query,
    responses: Sequence[str],
    *,
    template: str = "deepseek-grm",
    hint: int | None = None,
    single_label: bool = False,
) -> str:
    """Render the GRM input for ``responses`` in the order given.

    Args:
        query: the user's query or a chat transcript ending with the user's turn.
        responses: the responses in the order the judge sees them.
        template: ``deepseek-grm`` (the paper's, byte for byte) or ``compact`` (the embedded world's).
        hint: 1-based position of the best response; appends ``The best response is: Response j``.
        single_label: use the single-response training template (scores 0/1); needs exactly one response.

    Example:
        >>> render_prompt("2+2?", ["4", "5"], template="compact").splitlines()[0]
        'Query: 2+2?'
    """
    _check_template(template)
    if not responses:
        raise ValueError("render_prompt needs at least one response")
    if single_label and len(responses) != 1:
        raise ValueError(f"single_label=True needs exactly 1 response, got {len(responses)}")
    conversation = render_conversation(query)
    if template == "compact":
        lines = [f"Query: {conversation}"]
        if single_label:
            lines.append(f"Response: {responses[0]}")
            lines.append("Judge 0 or 1:")
        else:
            lines += [f"R{i}: {r}" for i, r in enumerate(responses, start=1)]  # short: the world is CPU-bound
            lines.append("Judge:")
        text = "\n".join(lines)
    elif single_label:
        text = (
            SINGLE_HEADER
            + SINGLE_CRITERIA
            + "#### Conversation Context ####\n"  # no blank line here, unlike §8.1 (the paper's text)
            + conversation
            + "\n#### Responses to be Scored ####\n"
            + f"[The Begin of Response]\n{responses[0]}\n[The End of Response]\n"
            + SINGLE_OUTPUT
        )
    else:
        blocks = "".join(
            f"[The Begin of Response {i}]\n{r}\n[The End of Response {i}]\n" for i, r in enumerate(responses, start=1)
        )
        text = (
            DEFAULT_HEADER
            + DEFAULT_CRITERIA
            + "\n#### Conversation Context ####\n"
            + conversation
            + "\n#### Responses to be Scored ####\n"
            + blocks
            + DEFAULT_OUTPUT
        )
    if hint is not None:
        if not 1 <= hint <= len(responses):
            raise ValueError(f"hint must be a 1-based response position in [1, {len(responses)}], got {hint}")
        text += "\n" + HINT_LINE.format(j=hint)
    return text


def with_principles(prompt: str, principles: str) -> str:
    """``prompt`` with the judgement's principles already written (``\\nSpecific Criteria: <principles>``): the
    model continues with ``\\nAnalysis: ...`` and the scores, so the usual parsing reads its output. [choice]"""
    return f"{prompt}\n{PRINCIPLES_MARK} {principles}"


def render_principles_prompt(query: Query, *, template: str = "deepseek-grm") -> str:
    """The input that asks for principles from the query alone (no responses): the model writes the
    ``Specific Criteria: ...`` line (read back with ``extract_principles``). [choice, after IP-GRM]"""
    _check_template(template)
    conversation = render_conversation(query)
    if template == "compact":
        return f"Query: {conversation}\nPrinciples:"
    return (
        DEFAULT_HEADER
        + DEFAULT_CRITERIA
        + "\n#### Conversation Context ####\n"
        + conversation
        + "\n"
        + PRINCIPLES_OUTPUT
    )


def extract_principles(text: str) -> str | None:
    """The principles of a generated text: after the last ``Specific Criteria:`` (else from the start) up to
    ``Analysis:`` or the end of that paragraph; None when nothing is left."""
    head = text.split("Analysis:", 1)[0]
    at = head.rfind(PRINCIPLES_MARK)
    body = head[at + len(PRINCIPLES_MARK) :] if at >= 0 else head
    body = body.strip().split("\n\n", 1)[0].strip()
    return body or None


def render_meta_prompt(query: Query, responses: Sequence[str], judgement: str) -> str:
    """The meta-RM input (SPEC §8.3): responses in the order that sample saw, then the sampled GRM output."""
    blocks = "".join(
        f"[The Begin of Response {i}]\n{r}\n[The End of Response {i}]\n" for i, r in enumerate(responses, start=1)
    )
    return (
        "Prompt: Please score the responses.\n"
        "#### Conversation Context ####\n"
        f"{render_conversation(query)}\n"
        "#### Responses to be Scored ####\n"
        f"{blocks}"
        "\n"
        f"Response: {judgement}"
    )


def wrap_chat(tokenizer: Any, prompt: str) -> str:
    """Wrap a GRM prompt in the tokenizer's chat template (for instruct models; base models use the raw prompt)."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(
            "chat_template=true but this tokenizer has no chat template; set sampling.chat_template=false "
            "for base models"
        )
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
