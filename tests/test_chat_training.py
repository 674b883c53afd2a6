"""Multi-turn chat rows train on every assistant turn, with the model's chat template when it has one,
and the benchmark prompt is the same text the training saw before the last answer."""

from __future__ import annotations

import math
import shutil

import pytest
from transformers import AutoTokenizer

from core.prompts import to_prompt_completion
from core.spec import TrainingSettings
from core.tasks import get
from core.train import load_model, tokenize_turns, train

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CHAT = {
    "prompt": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Where is my parcel?"},
        {"role": "assistant", "content": "It left the warehouse."},
        {"role": "user", "content": "When will it arrive?"},
    ],
    "answer": "On Monday.",
    "answer_full": "On Monday.",
}
SINGLE = {"prompt": "Write one half as a number.", "answer": "0.5", "answer_full": "0.5"}


@pytest.fixture(scope="module")
def templated_model(tiny_lm_path, tmp_path_factory):
    """The tiny model's folder, copied, with a ChatML template."""
    folder = tmp_path_factory.mktemp("tiny-chat") / "model"
    shutil.copytree(tiny_lm_path, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = CHATML
    tok.save_pretrained(folder)
    return folder


def _trained_text(row: dict, tokenizer) -> tuple[list[str], str]:
    """The trained spans (decoded runs of masked tokens) and the whole text of one tokenized row."""
    (done,) = tokenize_turns(to_prompt_completion([row], "generative", tokenizer), tokenizer)
    runs, current = [], []
    for token, trained in zip(done["input_ids"], done["completion_mask"]):
        if trained:
            current.append(token)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    if current:
        runs.append(tokenizer.decode(current))
    return runs, tokenizer.decode(done["input_ids"])


def test_without_a_template_every_assistant_turn_is_trained_in_the_plain_layout(tiny_lm_path):
    tok = AutoTokenizer.from_pretrained(tiny_lm_path)
    assert not tok.chat_template
    runs, text = _trained_text(CHAT, tok)
    assert runs == [" It left the warehouse.", " On Monday." + tok.eos_token]
    assert text.startswith("System: Answer briefly.\nUser: Where is my parcel?\nAssistant: It left")
    # the benchmark prompt of the same row is exactly the text before the last answer
    turns = get("generative").turns(CHAT, tok)
    assert "".join(seg for seg, _ in turns[:-1]) == get("generative").prompt(CHAT, tok)


def test_with_a_template_every_assistant_turn_is_trained_in_the_template(templated_model):
    tok = AutoTokenizer.from_pretrained(templated_model)
    runs, text = _trained_text(CHAT, tok)
    assert runs == ["It left the warehouse.<|im_end|>\n", "On Monday.<|im_end|>\n" + tok.eos_token]
    assert "<|im_start|>user\nWhen will it arrive?<|im_end|>\n<|im_start|>assistant\n" in text
    turns = get("generative").turns(CHAT, tok)
    assert "".join(seg for seg, _ in turns[:-1]) == get("generative").prompt(CHAT, tok)
    # A single-turn row in the same mixture trains on its answer only, as TRL does.
    runs, _ = _trained_text(SINGLE, tok)
    assert runs == ["0.5" + tok.eos_token]


def test_a_template_that_rewrites_earlier_turns_trains_the_last_turn_only(templated_model):
    tok = AutoTokenizer.from_pretrained(templated_model)
    # Like reasoning templates that drop earlier turns' thinking: the prefix changes as the chat grows.
    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'assistant' and not loop.last %}<|im_start|>assistant\n"
        "(earlier)<|im_end|>\n{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    assert get("generative").turns(CHAT, tok) is None
    runs, _ = _trained_text(CHAT, tok)
    assert runs == ["On Monday." + tok.eos_token]


@pytest.mark.parametrize("with_template", [False, True])
def test_a_mixture_with_chats_trains(with_template, tiny_lm_path, templated_model, tmp_path):
    settings = TrainingSettings(method="full", max_steps=4, batch_size=2, max_seq_length=64, learning_rate=1e-3)
    loaded = load_model(str(templated_model if with_template else tiny_lm_path), settings)
    rows = to_prompt_completion([CHAT, SINGLE] * 4, "generative", loaded.tokenizer)
    assert sum("turns" in r for r in rows) == 4
    result = train(loaded, rows, settings, seed=0, out_dir=None, save=False)
    assert result.steps == 4 and math.isfinite(result.train_loss) and result.train_tokens > 0
