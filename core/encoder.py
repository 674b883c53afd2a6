"""Encoder classifiers: a BERT-like model fine-tuned as `AutoModelForSequenceClassification`.

The study's label set becomes the head's label ids (`id2label`/`label2id`, saved with the adapter).
LoRA adapts the encoder and PEFT trains the new classifier head in full (`modules_to_save`, set by
`task_type="SEQ_CLS"`). Training is transformers' Trainer on tokenized text with label ids; scoring
is one forward pass per row, so every metric the causal path reports (accuracy, macro-F1, the gold
label's probability, cross-entropy) comes from the softmax over the labels.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from core.adapters import load_kwargs, with_adapter
from core.spec import TrainingSettings


def load_classifier(source: str, labels: list[str], settings: TrainingSettings, *, method: str, cuda: bool, bf16: bool):
    """Tokenizer and model (LoRA-wrapped unless full fine-tuning) with the study's labels as its head."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    kwargs: dict = {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {name: i for i, name in enumerate(labels)},
    }
    # The new head stays in full precision: transformers' default skip list names only its bias.
    kwargs |= load_kwargs(method, bf16, keep_full=["classifier", "score"])
    with _quiet_loading():  # the new head is reported as "MISSING" weights: expected, not news
        model = AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
    model = with_adapter(model, settings, method, "SEQ_CLS")
    if method != "qlora":
        model.to("cuda" if cuda else "cpu")
    return tokenizer, model


def train_classifier(
    loaded, rows: list[dict], settings: TrainingSettings, *, steps: int, seed: int, work_dir: Path, callbacks: list
) -> tuple[float | None, float, int]:
    """Train on {"text", "label"} rows for `steps` optimizer steps; (train loss, seconds, tokens seen)."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from core.train import batching_arguments

    label2id = loaded.model.config.label2id
    tok = loaded.tokenizer
    encoded = tok([r["text"] for r in rows], truncation=True, max_length=settings.max_seq_length)
    dataset = Dataset.from_dict({**encoded, "labels": [label2id[r["label"]] for r in rows]})
    args = TrainingArguments(
        output_dir=str(work_dir / "trainer"),
        max_steps=steps,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=int(settings.warmup_ratio * steps),
        weight_decay=settings.weight_decay,
        bf16=loaded.bf16,
        logging_steps=max(1, min(25, steps // 20)),
        save_strategy="no",
        report_to=[],
        seed=seed,
        data_seed=seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=loaded.device == "cpu",
        label_names=["labels"],
        **batching_arguments(loaded, settings),
    )
    trainer = Trainer(
        model=loaded.model,
        args=args,
        train_dataset=dataset,
        data_collator=DataCollatorWithPadding(tok),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    start = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - start
    mean_len = sum(len(ids) for ids in encoded["input_ids"]) / max(len(rows), 1)
    tokens = int(mean_len * steps * settings.batch_size * settings.grad_accum)
    loss = float(output.training_loss) if output.training_loss is not None else None
    return loss, seconds, tokens


def is_classifier(model) -> bool:
    """A sequence-classification model (possibly inside a PEFT wrapper), as load_classifier makes."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return type(base).__name__.endswith("ForSequenceClassification")


def label_log_probs(
    model, tokenizer, texts: list[str], labels: list[str], *, batch_size: int, max_len: int, device: str
) -> list[list[float]]:
    """Per text, the log-probability of each study label (in `labels` order) under the classifier head."""
    import torch

    head = [model.config.label2id[name] for name in labels]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[list[float]] = [[] for _ in texts]
    model.eval()
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            enc = tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=max_len, return_tensors="pt"
            ).to(device)
            logp = torch.log_softmax(model(**enc).logits.float(), dim=-1)[:, head]
            for i, row in zip(idx, logp.tolist()):
                out[i] = row
    return out


def load_trained(folder: str | Path, *, device: str = "cpu"):
    """Tokenizer and classifier saved by a run (an adapter folder, or a fully fine-tuned model folder)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if not (folder / "adapter_config.json").is_file():
        return tokenizer, AutoModelForSequenceClassification.from_pretrained(folder).to(device)
    import json

    from peft import PeftModel

    config = AutoConfig.from_pretrained(folder)
    base_ref = json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
    with _quiet_loading():
        base = AutoModelForSequenceClassification.from_pretrained(
            base_ref, num_labels=len(config.id2label), id2label=config.id2label, label2id=config.label2id
        )
    return tokenizer, PeftModel.from_pretrained(base, folder).to(device)


@contextmanager
def _quiet_loading():
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
