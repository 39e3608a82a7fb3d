"""Build tiny random Llama-style causal LMs with a word-level tokenizer, fully offline (no hub access).

Used by the test-suite (``tiny_model_dir`` fixture) and by ``bench/sampling.py``.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>"]
PAD, UNK, BOS, EOS = SPECIAL_TOKENS

# A handful of real words so that test prompts read naturally; the rest of the vocabulary is synthetic.
BASE_WORDS = [
    "the",
    "a",
    "an",
    "of",
    "to",
    "and",
    "in",
    "is",
    "it",
    "that",
    "for",
    "on",
    "with",
    "as",
    "was",
    "by",
    "be",
    "this",
    "are",
    "or",
    "at",
    "from",
    "not",
    "but",
    "have",
    "user",
    "assistant",
    "response",
    "query",
    "score",
    "scores",
    "analysis",
    "criteria",
    "specific",
    "best",
    "good",
    "bad",
    "helpful",
    "answer",
    "question",
    "model",
    "reward",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    ":",
    ",",
    ".",
    "?",
    "!",
    "\\boxed{",
    "}",
]

CHAT_TEMPLATE = (
    "{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}assistant : {% endif %}"
)


def tiny_vocab(vocab_size: int) -> list[str]:
    """Return ``vocab_size`` distinct tokens: the specials, ``BASE_WORDS``, then ``w0``, ``w1``, ...

    Args:
        vocab_size: total number of tokens (at least ``len(SPECIAL_TOKENS) + 1``).

    Returns:
        The token list; a token's index is its id.
    """
    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise ValueError(f"vocab_size must be > {len(SPECIAL_TOKENS)}, got {vocab_size}")
    words = list(SPECIAL_TOKENS) + [w for w in BASE_WORDS if w not in SPECIAL_TOKENS]
    i = 0
    while len(words) < vocab_size:
        words.append(f"w{i}")
        i += 1
    return words[:vocab_size]


def build_tiny_tokenizer(vocab_size: int = 64):
    """Build a whitespace word-level ``PreTrainedTokenizerFast`` (BOS added, left padding, chat template).

    Args:
        vocab_size: number of tokens.

    Returns:
        The tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(tiny_vocab(vocab_size))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins word tokens with single spaces
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        padding_side="left",
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_tiny_model(
    out_dir: str | Path,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 64,
    vocab_size: int = 64,
    max_position_embeddings: int = 1024,
    seed: int = 0,
) -> Path:
    """Save a randomly initialised ``LlamaForCausalLM`` + tokenizer (safetensors) to ``out_dir``.

    Args:
        out_dir: target directory (created).
        hidden_size: model width.
        num_layers: decoder layers.
        num_heads: attention heads (also KV heads).
        intermediate_size: MLP width.
        vocab_size: tokenizer and embedding size.
        max_position_embeddings: context length.
        seed: torch seed for the random weights.

    Returns:
        ``out_dir`` as a ``Path``.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tiny_tokenizer(vocab_size)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    # Default init (std 0.02) gives near-uniform next-token distributions; widen the head so that greedy
    # decoding has clear winners (no near-ties that flip between batched and unbatched float kernels).
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, 1.0)
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out
