"""Training and evaluation on the built-in tiny model: real models, real gradients, no mocks."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch

from core.evaluation import _encode_pair, evaluate_model
from core.label_scoring import score_labels, score_labels_full
from core.prompts import prompt_text, to_prompt_completion
from core.spec import TrainingSettings
from core.tiny_model import TINY_LM, ensure_tiny_lm
from core.train import TrainingError, load_model, resolve_method, step_budget, train

LABELS = ["billing", "shipping", "account", "technical", "refund", "cancel"]


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_tiny_model_build_is_deterministic(tmp_path, tiny_lm_path):
    again = ensure_tiny_lm(tmp_path / "models")
    assert again != tiny_lm_path
    a, b = _digest(tiny_lm_path), _digest(again)
    assert a["model.safetensors"] == b["model.safetensors"]
    assert a["tokenizer.json"] == b["tokenizer.json"]
    # cached: a second call returns the same folder without rebuilding
    assert ensure_tiny_lm(tmp_path / "models") == again


def test_tiny_model_loads_like_a_hub_model(tiny_lm_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_path)
    ids = tok("Text: my invoice is wrong\nLabel:", return_tensors="pt")
    out = model(**ids)
    assert out.logits.shape[-1] == len(tok)
    assert tok.eos_token_id is not None and tok.pad_token_id is not None


def test_step_budget_epochs_floor_and_fixed():
    s = TrainingSettings(epochs=2, batch_size=8, min_steps=0)
    assert step_budget(80, s) == (20, 2.0)
    floor = TrainingSettings(epochs=1, batch_size=8, min_steps=300)
    steps, epochs = step_budget(250, floor)
    assert steps == 300 and epochs == pytest.approx(9.6)
    assert step_budget(8000, floor)[0] == 1000  # data beats the floor at large sizes
    fixed = TrainingSettings(max_steps=7, batch_size=4, grad_accum=2)
    assert step_budget(10_000, fixed) == (7, pytest.approx(7 * 8 / 10_000))


def test_method_resolution_and_qlora_needs_cuda():
    assert resolve_method(TINY_LM, TrainingSettings()) == "full"
    assert resolve_method("org/some-model", TrainingSettings()) == "lora"
    assert resolve_method("org/some-model", TrainingSettings(method="qlora")) == "qlora"
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="needs a CUDA GPU"):
            load_model("org/some-model", TrainingSettings(method="qlora"))


def test_unknown_model_gets_a_clear_message(tmp_path):
    with pytest.raises(TrainingError, match="not in the local cache|cannot load model"):
        load_model(str(tmp_path / "no-such-model"), TrainingSettings(method="lora"))
    with pytest.raises(TrainingError, match="unknown built-in model"):
        load_model("builtin:huge-lm", TrainingSettings())


def test_batched_label_scores_equal_one_at_a_time(tiny_lm_path, demo_folder):
    import json

    rows = [json.loads(line) for line in (demo_folder / "benchmark.jsonl").read_text().splitlines()[:7]]
    loaded = load_model(TINY_LM, TrainingSettings(method="full"))
    prompts = [prompt_text(row, "classification") for row in rows]
    scores, counts = score_labels(
        loaded.model, loaded.tokenizer, prompts, LABELS, batch_size=5, max_len=64, device="cpu"
    )
    tok, model = loaded.tokenizer, loaded.model
    for prompt, row_scores, row_counts in zip(prompts, scores, counts):
        for label, got, n in zip(LABELS, row_scores, row_counts):
            ids, start = _encode_pair(tok, prompt, f" {label}", 64)
            with torch.inference_mode():
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
            want = sum(logp[t - 1, ids[t]].item() for t in range(start, len(ids)))
            assert got == pytest.approx(want, abs=1e-4)
            assert n == len(ids) - start >= 2  # the label's tokens and EOS
    full_scores, full_counts = score_labels_full(
        loaded.model, loaded.tokenizer, prompts, LABELS, batch_size=7, max_len=64, device="cpu"
    )
    assert full_counts == counts
    for a, b in zip(full_scores, scores):
        assert a == pytest.approx(b, abs=1e-4)


@pytest.mark.parametrize(
    ("labels", "max_len"),
    [
        (["can", "cancel", "cancellation", "cancel it now", "billing", "bill"], 64),  # shared first tokens: a trie
        (["account"], 64),  # one label
        (LABELS, 12),  # prompts cut from the left, each label by its own length: the reference path
    ],
)
def test_label_trie_scores_equal_the_reference(tiny_lm_path, demo_folder, labels, max_len, caplog):
    import json

    rows = [json.loads(line) for line in (demo_folder / "benchmark.jsonl").read_text().splitlines()[:9]]
    loaded = load_model(TINY_LM, TrainingSettings(method="full"))
    tok, model = loaded.tokenizer, loaded.model
    prompts = [prompt_text(row, "classification") for row in rows]
    prefixes = {tuple(tok(f" {label}", add_special_tokens=False)["input_ids"][:1]) for label in labels}
    assert len(labels) == 1 or max_len < 20 or len(prefixes) < len(labels)  # the trie case shares a node
    with caplog.at_level("WARNING", logger="core.label_scoring"):
        got = score_labels(model, tok, prompts, labels, batch_size=4, max_len=max_len, device="cpu")
    assert ("falls back to the reference scorer" in caplog.text) == (max_len < 20)  # the fast path unless cut
    want = score_labels_full(model, tok, prompts, labels, batch_size=7, max_len=max_len, device="cpu")
    assert got[1] == want[1]
    for a, b in zip(got[0], want[0]):
        assert a == pytest.approx(b, abs=1e-4)


def test_training_learns_and_records_steps(tmp_path, demo_folder):
    import json

    d0 = [json.loads(x) for x in (demo_folder / "d0.jsonl").read_text().splitlines()]
    bench = [json.loads(x) for x in (demo_folder / "benchmark.jsonl").read_text().splitlines()[:120]]
    settings = TrainingSettings(method="full", learning_rate=1e-3, batch_size=8, max_steps=60, max_seq_length=64)
    loaded = load_model(TINY_LM, settings)

    def score():
        return evaluate_model(
            loaded.model,
            loaded.tokenizer,
            bench,
            task="classification",
            metrics=["loss", "accuracy", "gold_prob"],
            labels=LABELS,
            batch_size=256,
            max_len=64,
        )

    before = score()
    seen = []
    result = train(
        loaded,
        to_prompt_completion(d0, "classification"),
        settings,
        seed=0,
        out_dir=tmp_path,
        progress=lambda phase, step, total, loss: seen.append((phase, step, total)),
    )
    after = score()
    assert result.steps == 60 and result.method == "full"
    assert result.train_tokens > 0 and result.tokens_per_second > 0
    assert after.metrics["loss"] < before.metrics["loss"] - 1.0  # it learned the label format at least
    assert all(0.0 < r.metrics["gold_prob"] < 1.0 for r in (before, after))
    assert seen[0] == ("training", 0, 60) and seen[-1][1] == 60
    assert result.loss_curve and result.loss_curve[-1][1] < result.loss_curve[0][1]
    assert (tmp_path / "model" / "config.json").is_file()


def test_padding_free_is_refused_without_flash_attention():
    settings = TrainingSettings(method="full", max_steps=2, batching="padding_free")
    loaded = load_model(TINY_LM, settings)
    with pytest.raises(TrainingError, match="padding_free' needs a causal LM with FlashAttention"):
        train(
            loaded,
            to_prompt_completion([{"text": "a b", "label": "x"}] * 4, "classification"),
            settings,
            seed=0,
            out_dir=None,
            save=False,
        )


def test_training_is_seeded(tmp_path, demo_folder):
    import json

    rows = to_prompt_completion(
        [json.loads(x) for x in (demo_folder / "d0.jsonl").read_text().splitlines()][:64], "classification"
    )
    settings = TrainingSettings(method="full", learning_rate=1e-3, batch_size=8, max_steps=8, max_seq_length=64)
    losses = []
    for _ in range(2):
        loaded = load_model(TINY_LM, settings)
        losses.append(train(loaded, rows, settings, seed=3, out_dir=None, save=False).train_loss)
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_lora_trains_only_adapters_and_saves_an_adapter(tmp_path, demo_folder):
    import json

    rows = to_prompt_completion(
        [json.loads(x) for x in (demo_folder / "d0.jsonl").read_text().splitlines()][:32], "classification"
    )
    settings = TrainingSettings(method="lora", lora_r=4, lora_alpha=8, max_steps=3, batch_size=8, max_seq_length=64)
    loaded = load_model(TINY_LM, settings)
    trainable = [n for n, p in loaded.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    result = train(loaded, rows, settings, seed=0, out_dir=tmp_path)
    assert result.method == "lora" and result.steps == 3
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()


def test_generation_metrics_for_qa_and_generative(tiny_lm_path):
    loaded = load_model(TINY_LM, TrainingSettings(method="full"))
    qa = [
        {
            "question": "who pays?",
            "context": "the customer pays the invoice",
            "answers": {"text": ["the customer"], "answer_start": [0]},
        },
        {"question": "when?", "context": "on monday", "answers": {"text": ["monday"], "answer_start": [3]}},
    ]
    res = evaluate_model(
        loaded.model,
        loaded.tokenizer,
        qa,
        task="qa",
        metrics=["exact_match", "f1", "loss"],
        batch_size=2,
        max_new_tokens=4,
        max_len=64,
    )
    assert set(res.metrics) == {"exact_match", "f1", "loss"}
    assert 0.0 <= res.metrics["exact_match"] <= res.metrics["f1"] + 1e-9 <= 1.0 + 1e-9
    assert math.isfinite(res.metrics["loss"]) and res.metrics["loss"] > 0
    assert len(res.predictions) == 2
    gen = [{"prompt": "what is 2 + 2?", "answer": "4", "answer_full": "2 + 2 = 4 #### 4"}]
    res = evaluate_model(
        loaded.model,
        loaded.tokenizer,
        gen,
        task="generative",
        metrics=["exact_match", "loss"],
        answer_extraction="gsm8k",
        batch_size=1,
        max_new_tokens=3,
        max_len=64,
    )
    assert set(res.metrics) == {"exact_match", "loss"}
