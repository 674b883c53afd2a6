"""The built-in offline model `builtin:tiny-lm`: a small Llama-style causal LM made from a config.

It exists so that the whole product runs with no network: the tokenizer is a byte-level BPE
trained here with `tokenizers` on a fixed corpus, the weights are a seeded random init, and both
are saved with `save_pretrained` so every other code path loads it like any Hub model
(`AutoTokenizer` / `AutoModelForCausalLM` from a folder). Building is deterministic and cached by
a hash of the recipe, so two machines build the same model.

A random-init model cannot learn through LoRA (its embeddings and head stay random and frozen), so
the training code fine-tunes it fully.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from core.hashing import stable_hash
from core.models import TINY_LM
from core.paths import models_dir

__all__ = ["TINY_LM", "ensure_tiny_lm"]

RECIPE = {
    "version": 2,
    "vocab_size": 2048,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 256,
    "seed": 1234,
}

# A small general corpus so the tokenizer knows ordinary English as well as the demo domain.
_GENERAL_TEXT = """
The quick brown fox jumps over the lazy dog. A question and an answer: what is the capital of France?
Paris is the capital. Please help me with my order, my account, my payment and my password.
Numbers one two three four five six seven eight nine ten 0 1 2 3 4 5 6 7 8 9 10 100 1000 42.
The model reads a message and writes a short reply. Context: the meeting starts at noon on Monday.
Instruction: summarize the text. Response: it is short. Question: who wrote it? Answer: the team.
I cannot log in, the app crashes, the invoice is wrong, the parcel is late, I want my money back.
"""


def _corpus() -> list[str]:
    from core import demo

    lines = [line.strip() for line in _GENERAL_TEXT.strip().splitlines()]
    lines += demo.tokenizer_corpus()
    return lines


def ensure_tiny_lm(cache_root: Path | None = None) -> Path:
    """Return the folder of the built-in model, building it on first use (about a second)."""
    root = Path(cache_root or models_dir())
    folder = root / f"tiny-lm-{stable_hash(RECIPE)[:10]}"
    if (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-lm-", dir=root))
    try:
        _build(tmp)
        try:
            os.replace(tmp, folder)  # atomic: a concurrent builder either wins or finds it there
        except OSError:
            if not (folder / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _build(out: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<pad>", "<s>", "</s>"]
    trainer = trainers.BpeTrainer(
        vocab_size=RECIPE["vocab_size"],
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=RECIPE["max_position_embeddings"],
    )
    fast.padding_side = "right"
    fast.save_pretrained(out)

    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=RECIPE["hidden_size"],
        intermediate_size=RECIPE["intermediate_size"],
        num_hidden_layers=RECIPE["num_hidden_layers"],
        num_attention_heads=RECIPE["num_attention_heads"],
        num_key_value_heads=RECIPE["num_key_value_heads"],
        max_position_embeddings=RECIPE["max_position_embeddings"],
        pad_token_id=fast.pad_token_id,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(RECIPE["seed"])
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    (out / "recipe.json").write_text(json.dumps(RECIPE, indent=2))
