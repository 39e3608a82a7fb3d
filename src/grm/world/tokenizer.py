"""A word-level tokenizer built locally from the world's vocabulary (no download).

Every word, name and number is one token, with or without its leading space (``" Kelt"`` and ``"Kelt"`` are two
tokens); each punctuation character is one token, again with an optional leading space; a newline and a bare
space are tokens. The decoder concatenates the pieces, so ``decode(encode(text)) == text`` exactly for every text
the world produces (prompts, hints, critiques, general answers, ``\\boxed{8, 3}``).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from pathlib import Path

from grm.world.generator import (
    ARITH_HEDGED,
    ARITH_PLAIN,
    CUES,
    FACTS_FORMS,
    GENERAL_PROMPT,
    PRINCIPLES,
    RELATIONS,
    STYLE_PRINCIPLES,
    World,
    WorldConfig,
)

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "unk": "<unk>"}
# a word (letters/digits/underscore) or one other non-space character, each with an optional leading space;
# any other whitespace character stands alone
PRETOKEN_PATTERN = r" ?[A-Za-z0-9_]+| ?[^\sA-Za-z0-9_]|\s"
_PRETOKEN_RE = re.compile(PRETOKEN_PATTERN)

# every fixed text the world prints: the compact template, the hint, the teacher's critique, response forms
TEMPLATE_TEXT = " ".join(
    [
        "Query: Response 1: Response: Judge: Judge 0 or 1: The best response is: Response 2",
        "Specific Criteria: Analysis: Scores: \\boxed{8, 3} [[8, 3]]",
        "answer R R1 R2 R3 R4 right wrong near short long plain hedged same mixed none",
        "of ref + ? . , ! ( ) - = * / ; ' \" times repeat",
        " ".join(RELATIONS),
        " ".join(FACTS_FORMS + ARITH_PLAIN + ARITH_HEDGED),
        " ".join(name for pair in PRINCIPLES.values() for name, _ in pair),
        " ".join([*CUES, *STYLE_PRINCIPLES]),
        GENERAL_PROMPT,
        # the meta-RM input (grm.method.prompts.render_meta_prompt)
        "Prompt: Please score the responses. #### Conversation Context #### Responses to be Scored",
        "[The Begin of Response 1] [The End of Response 1]",
    ]
)
PUNCTUATION = list(".,:;?!+-=*/()[]{}\\'\"<>#_%&@|~^`$")


def pretokenize(text: str) -> list[str]:
    """Split ``text`` the way the tokenizer's pre-tokenizer does (pieces concatenate back to ``text``)."""
    return _PRETOKEN_RE.findall(text)


def world_vocabulary(config: WorldConfig) -> list[str]:
    """The sorted token strings of a world (special tokens excluded).

    Args:
        config: the world whose names and numbers to include (the vocabulary depends only on its counts).

    Returns:
        Every word and punctuation piece with and without a leading space, plus ``"\\n"`` and ``" "``.
    """
    world = World(config)
    words = set(world.words) | {str(i) for i in range(0, 101)}
    for piece in pretokenize(TEMPLATE_TEXT):
        words.add(piece.strip())
    words.update(PUNCTUATION)
    words.discard("")
    vocab = {"\n", " ", "\t"}
    for w in words:
        vocab.add(w)
        vocab.add(" " + w)
    return sorted(vocab)


def build_tokenizer(config: WorldConfig, out_dir: str | Path) -> Path:
    """Build the world's tokenizer and save it as a Hugging Face tokenizer folder (atomically).

    Args:
        config: the world.
        out_dir: destination folder; ``AutoTokenizer.from_pretrained(out_dir)`` loads it.

    Returns:
        ``out_dir`` as a ``Path``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = list(SPECIAL_TOKENS.values())
    vocab = {tok: i for i, tok in enumerate(specials + world_vocabulary(config))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk"]))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(PRETOKEN_PATTERN), behavior="isolated")
    tok.decoder = decoders.Fuse()
    bos = SPECIAL_TOKENS["bos"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, vocab[bos])]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=SPECIAL_TOKENS["eos"],
        pad_token=SPECIAL_TOKENS["pad"],
        unk_token=SPECIAL_TOKENS["unk"],
        clean_up_tokenization_spaces=False,
        model_max_length=512,
    )
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        fast.save_pretrained(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("world tokenizer: %d tokens -> %s", len(vocab), out_dir)
    return out_dir
