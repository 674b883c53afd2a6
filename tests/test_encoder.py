"""Real pretrained weights, offline: builtin:minilm (all-MiniLM-L6-v2) trained as a classifier with LoRA.

And the model checks made before anything is enqueued: an encoder asked for a task other than
classification, a folder that is neither an encoder nor a causal LM, a saved head with other labels.
"""

from __future__ import annotations

import json

import pytest

from bench import topics
from core.encoder import load_trained
from core.evaluation import evaluate_model
from core.models import MINILM, TINY_LM
from core.spec import SpecError, TrainingSettings
from core.train import load_model, resolve_method, train
from tests.conftest import real_redis, redis_test_url
from tests.specs import tiny_spec
from workers import client

REDIS_URL = redis_test_url(5)
METRICS = ["accuracy", "macro_f1", "gold_prob", "loss"]


@pytest.fixture
def redis():
    yield from real_redis(REDIS_URL)


def _score(loaded_model, tokenizer, rows, labels):
    return evaluate_model(
        loaded_model, tokenizer, rows, task="classification", metrics=METRICS, labels=labels, max_len=64, batch_size=128
    )


def test_lora_on_minilm_learns_a_topic_task_and_its_adapter_reloads_to_the_same_predictions(tmp_path):
    train_rows = topics.generate("d0", 800, seed=0)
    bench = topics.generate("benchmark", 300, seed=0)
    labels = sorted(topics.TOPICS)
    settings = TrainingSettings(method="lora", learning_rate=1e-3, batch_size=16, max_steps=50, max_seq_length=64)
    loaded = load_model(MINILM, settings, labels=labels, seed=0)
    assert loaded.kind == "encoder" and loaded.method == "lora"
    trainable = [n for n, p in loaded.model.named_parameters() if p.requires_grad]
    assert any("classifier" in n for n in trainable)  # the new head is trained in full (modules_to_save)
    assert all("lora_" in n or "classifier" in n for n in trainable)  # and the encoder only through LoRA
    before = _score(loaded.model, loaded.tokenizer, bench, labels)

    result = train(loaded, train_rows, settings, seed=0, out_dir=tmp_path)
    after = _score(loaded.model, loaded.tokenizer, bench, labels)
    assert result.steps == 50 and result.method == "lora"
    assert after.metrics["accuracy"] >= 0.6, (before.metrics, after.metrics)
    assert after.metrics["accuracy"] > before.metrics["accuracy"] + 0.2
    assert after.metrics["loss"] < before.metrics["loss"] and after.metrics["gold_prob"] > before.metrics["gold_prob"]

    saved = json.loads((tmp_path / "adapter" / "config.json").read_text())
    assert [saved["id2label"][str(i)] for i in range(len(labels))] == labels
    tokenizer, reloaded = load_trained(tmp_path / "adapter")
    again = _score(reloaded, tokenizer, bench, labels)
    assert again.predictions == after.predictions
    assert again.metrics == pytest.approx(after.metrics, abs=1e-5)


def test_auto_method_is_lora_for_pretrained_weights_and_full_for_the_random_init_model():
    assert resolve_method(MINILM, TrainingSettings()) == "lora"
    assert resolve_method("org/some-model", TrainingSettings()) == "lora"
    assert resolve_method(TINY_LM, TrainingSettings()) == "full"


def test_the_model_probe_knows_the_pretrained_builtin_model():
    probe = client.check_model(MINILM)
    assert probe["ok"] and probe["kind"] == "builtin" and "pretrained" in probe["message"]


def _folder_with_config(tmp_path, config: dict):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def _refused(redis, spec_over: dict, *words: str):
    with pytest.raises(SpecError) as info:
        client.submit(redis, tiny_spec(**spec_over))
    text = " ".join(info.value.problems)
    assert text.startswith("model:"), text
    for word in words:
        assert word in text, text
    assert list(redis.scan_iter("*")) == []  # nothing enqueued, no record written


@pytest.mark.parametrize("task", ["qa", "generative"])
def test_an_encoder_for_a_task_other_than_classification_is_refused_before_enqueueing(redis, task, tmp_path):
    rows = tmp_path / "rows.jsonl"
    row = {"question": "q{}", "context": "some context", "answers": ["a"], "prompt": "p{}", "answer": "a"}
    rows.write_text(
        "".join(
            json.dumps({k: v.format(i) if isinstance(v, str) else v for k, v in row.items()}) + "\n" for i in range(40)
        )
    )
    src = {"path": str(rows)}
    over = {
        "model": MINILM,
        "task": task,
        "d0": {**src, "name": "d0"},
        "benchmark": {**src, "name": "benchmark"},
        "candidates": [{**src, "name": "c1"}],
        "sizes": [10, 20],
        "metrics": None,
        "training": {"method": "lora"},
    }
    _refused(redis, over, "encoder", f"'{task}'", "causal LM")


def test_a_folder_that_is_neither_an_encoder_nor_a_causal_lm_is_refused(redis, tmp_path):
    folder = _folder_with_config(
        tmp_path, {"architectures": ["T5ForConditionalGeneration"], "model_type": "t5", "is_encoder_decoder": True}
    )
    _refused(redis, {"model": folder, "training": {"method": "lora"}}, "neither", "T5ForConditionalGeneration")


def test_a_saved_classifier_head_with_other_labels_is_refused(redis, tmp_path):
    folder = _folder_with_config(
        tmp_path,
        {
            "architectures": ["BertForSequenceClassification"],
            "model_type": "bert",
            "id2label": {"0": "negative", "1": "positive"},
            "label2id": {"negative": 0, "positive": 1},
        },
    )
    _refused(redis, {"model": folder, "training": {"method": "lora"}}, "classifier head", "negative", "billing")


def test_a_minilm_study_runs_through_a_real_worker_and_ranks_the_demo_right(redis, tmp_path, monkeypatch):
    from core.artifacts import ArtifactStore
    from tests.test_queue import Workers

    artifacts = ArtifactStore(tmp_path / "artifacts")
    monkeypatch.setenv("ARTIFACTS_DIR", str(artifacts.root))
    training = {"method": "auto", "epochs": 3, "learning_rate": 1e-3, "batch_size": 16, "max_seq_length": 64}
    spec = tiny_spec(model=MINILM, training=training, sizes=[60, 120, 240])
    study_id = client.submit(redis, spec, artifacts=artifacts)
    workers = Workers(REDIS_URL, artifacts, tmp_path)
    workers.start()
    try:
        state = client.wait(redis, study_id, timeout=600)
    finally:
        workers.stop_all()
    assert state["study"]["status"] == "finished", workers.logs()[-3000:]
    metrics = client.results(study_id, artifacts)
    assert [r["candidate"] for r in metrics["ranking"]][0] == "helpful"
    assert metrics["ranking"][0]["predicted"] > metrics["baseline"]["predicted"]
    runs = [json.loads(p.read_text()) for p in (artifacts.root / "runs").glob("*/result.json")]
    assert {r["train"]["method"] for r in runs} == {"lora"} and len(runs) == 9
    assert all((artifacts.root / "runs" / r["key"] / "adapter" / "config.json").is_file() for r in runs)
