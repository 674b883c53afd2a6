"""Fine-tune one model on one mixture: TRL's SFTTrainer on prompt/completion rows.

Short on purpose (nanoGPT / TRL's sft.py): load the model for the chosen method, build the
prompt/completion dataset, compute the step budget, train with a callback that reports progress,
save the adapter (or the model). The loss is on the completion only.

Methods: LoRA for pretrained models, QLoRA (4-bit NF4 via bitsandbytes) on CUDA, and full
fine-tuning for the built-in tiny model, whose random-init weights cannot learn through LoRA.
An encoder (BERT-like) trains as a sequence classifier instead (core/encoder.py), on the same
step budget and with the same progress reports.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core import models
from core.adapters import load_kwargs, with_adapter
from core.models import MINILM, TINY_LM
from core.spec import TrainingSettings

log = logging.getLogger(__name__)

# progress(phase, step, total, loss) — called from the training loop; may raise to stop it.
ProgressFn = Callable[[str, int, int, float | None], None]


class TrainingError(RuntimeError):
    """A run that cannot train as asked (no CUDA for QLoRA, an unknown model...), with the fix."""


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    method: str  # "lora" | "qlora" | "full"
    device: str
    bf16: bool
    source: str  # where the weights came from (folder or Hub id)
    kind: str = models.CAUSAL  # or models.ENCODER: a sequence classifier over `labels`


@dataclass
class TrainResult:
    method: str
    steps: int
    epochs: float
    train_loss: float | None
    seconds: float
    train_tokens: int
    tokens_per_second: float
    saved_to: str | None
    loss_curve: list[tuple[int, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def configure_threads() -> int:
    """Set torch's CPU threads from WORKBENCH_TORCH_THREADS, else half the cores (at most 4).

    Tiny-model kernels gain little from more threads, and oversubscribed threads (a worker beside
    a test run or a second worker) cost 5x and more (docs/BENCHMARKS.md). Returns the count set.
    """
    import torch

    value = os.environ.get("WORKBENCH_TORCH_THREADS")
    threads = int(value) if value and value.isdigit() and int(value) > 0 else max(1, min(4, (os.cpu_count() or 2) // 2))
    torch.set_num_threads(threads)
    return threads


def resolve_method(model_ref: str, settings: TrainingSettings) -> str:
    if settings.method == "auto":
        return "full" if models.is_random_init(model_ref) else "lora"
    return settings.method


def model_source(model_ref: str) -> str:
    """A folder or Hub id that `from_pretrained` accepts."""
    try:
        return models.model_source(model_ref)
    except models.ModelError as err:
        raise TrainingError(str(err)) from None


def model_kind(model_ref: str, source: str, *, trust_remote_code: bool) -> str:
    """CAUSAL or ENCODER, from the folder's config.json, else the Hub's (AutoConfig)."""
    try:
        config = models.local_config(model_ref)
        if config is None:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code).to_dict()
        return models.kind_of(config, model_ref)
    except models.ModelError as err:
        raise TrainingError(str(err)) from None
    except OSError as err:
        raise TrainingError(_model_load_hint(model_ref, err)) from None


def load_model(
    model_ref: str,
    settings: TrainingSettings,
    *,
    labels: list[str] | None = None,
    seed: int = 0,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load tokenizer and model for the training method, on CUDA when present.

    An encoder becomes a sequence classifier over `labels` (the study's label set, required then),
    its new head initialized from `seed` so a run is reproducible.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    method = resolve_method(model_ref, settings)
    cuda = torch.cuda.is_available()
    if method == "qlora" and not cuda:
        raise TrainingError(
            "training.method 'qlora' needs a CUDA GPU (4-bit bitsandbytes kernels); none is visible here. "
            "Run it on a GPU worker, or use method 'lora'."
        )
    bf16 = cuda and torch.cuda.is_bf16_supported() if settings.bf16 == "auto" else settings.bf16 == "on"
    if bf16 and not cuda and settings.bf16 == "on":
        log.warning("bf16 requested on CPU: slow and imprecise on most CPUs")
    source = model_source(model_ref)
    remote = trust_remote_code and os.environ.get("WORKBENCH_ALLOW_REMOTE_CODE") == "1"
    device = "cuda" if cuda else "cpu"
    if model_kind(model_ref, source, trust_remote_code=remote) == models.ENCODER:
        torch.manual_seed(seed)
        return _load_encoder(model_ref, source, labels, settings, method=method, cuda=cuda, bf16=bf16)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=remote)
    except OSError as err:
        raise TrainingError(_model_load_hint(model_ref, err)) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs = {"trust_remote_code": remote, **load_kwargs(method, bf16)}
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except OSError as err:
        raise TrainingError(_model_load_hint(model_ref, err)) from None
    model = with_adapter(model, settings, method, "CAUSAL_LM")
    if method != "qlora":
        model.to(device)
    return LoadedModel(model=model, tokenizer=tokenizer, method=method, device=device, bf16=bf16, source=source)


def _load_encoder(model_ref: str, source: str, labels, settings: TrainingSettings, *, method, cuda, bf16):
    from core import encoder

    if not labels:
        raise TrainingError(
            f"'{model_ref}' is an encoder: it can only be trained for classification (the study's labels become its "
            "head); choose a causal LM for this task"
        )
    try:
        tokenizer, model = encoder.load_classifier(source, labels, settings, method=method, cuda=cuda, bf16=bf16)
    except OSError as err:
        raise TrainingError(_model_load_hint(model_ref, err)) from None
    device = "cuda" if cuda else "cpu"
    return LoadedModel(model, tokenizer, method, device, bf16, source, kind=models.ENCODER)


def _model_load_hint(model_ref: str, err: Exception) -> str:
    text = str(err)
    if "gated" in text.lower() or "401" in text or "403" in text:
        return (
            f"model '{model_ref}' is gated: request access on its Hub page and give this worker a token "
            "(HF_TOKEN in the worker's environment)"
        )
    if os.environ.get("HF_HUB_OFFLINE") == "1" or "offline" in text.lower() or "connect" in text.lower():
        return (
            f"model '{model_ref}' is not in the local cache and the Hub cannot be reached: download it on a "
            f"connected machine, give a local folder, or use a built-in offline model ('{TINY_LM}', '{MINILM}') "
            f"({text.splitlines()[0]})"
        )
    return f"cannot load model '{model_ref}': check the Hub id or folder ({text.splitlines()[0]})"


def step_budget(n_rows: int, settings: TrainingSettings) -> tuple[int, float]:
    """Optimizer steps for a mixture of n_rows: epochs over the data, with a floor; and the epochs it means."""
    per_step = settings.batch_size * settings.grad_accum
    if settings.max_steps:
        steps = settings.max_steps
    else:
        steps = max(settings.min_steps, math.ceil(settings.epochs * n_rows / per_step))
    return steps, steps * per_step / max(n_rows, 1)


def train(
    loaded: LoadedModel,
    rows: list[dict],
    settings: TrainingSettings,
    *,
    seed: int,
    out_dir: Path | None,
    progress: ProgressFn | None = None,
    save: bool = True,
) -> TrainResult:
    """Train `loaded.model` in place: on prompt/completion `rows`, or {"text", "label"} rows for an encoder."""
    from transformers import set_seed

    if not rows:
        raise TrainingError("the mixture is empty: nothing to train on")
    set_seed(seed)
    steps, epochs = step_budget(len(rows), settings)
    work_dir = Path(out_dir) if out_dir else Path(os.environ.get("TMPDIR", "/tmp")) / "workbench-train"
    reporter = _progress_callback(steps, progress)
    if progress:
        progress("training", 0, steps, None)
    if loaded.kind == models.ENCODER:
        from core.encoder import train_classifier

        loss, seconds, tokens = train_classifier(
            loaded, rows, settings, steps=steps, seed=seed, work_dir=work_dir, callbacks=[reporter]
        )
    else:
        loss, seconds, tokens = _train_causal(
            loaded, rows, settings, steps=steps, seed=seed, work_dir=work_dir, reporter=reporter
        )
    return TrainResult(
        method=loaded.method,
        steps=steps,
        epochs=round(epochs, 4),
        train_loss=loss,
        seconds=round(seconds, 3),
        train_tokens=tokens,
        tokens_per_second=round(tokens / seconds, 1) if seconds > 0 else 0.0,
        saved_to=_save_weights(loaded, out_dir) if save and out_dir else None,
        loss_curve=reporter.curve,
    )


def _train_causal(loaded: LoadedModel, rows, settings, *, steps: int, seed: int, work_dir: Path, reporter):
    """TRL's SFTTrainer on prompt/completion rows; (train loss, seconds, tokens seen)."""
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    if any("turns" in r for r in rows):
        dataset = Dataset.from_list(tokenize_turns(rows, loaded.tokenizer))
    else:
        dataset = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    trainer = SFTTrainer(
        model=loaded.model,
        args=_sft_config(loaded, settings, steps=steps, seed=seed, work_dir=work_dir),
        train_dataset=dataset,
        processing_class=loaded.tokenizer,
        callbacks=[reporter],
    )
    trainer.remove_callback(PrinterCallback)  # our callback reports progress; keep stdout clean
    trainer.remove_callback(ProgressCallback)
    tokens = _count_tokens(trainer.train_dataset, steps, settings, len(rows))
    start = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - start
    return (float(output.training_loss) if output.training_loss is not None else None), seconds, tokens


def tokenize_turns(rows: list[dict], tokenizer) -> list[dict]:
    """{"input_ids", "completion_mask"} per row, for a mixture holding multi-turn chats.

    TRL trains a prompt/completion row on its completion only, so a chat's earlier assistant turns
    would be context and never targets. Here each row is tokenized whole and a token is trained when
    it starts inside a trained segment (every assistant turn; the completion of a single-turn row),
    and the row ends with EOS as TRL ends a completion.
    """
    templated = bool(getattr(tokenizer, "chat_template", None))
    eos = tokenizer.eos_token
    out = []
    for r in rows:
        segments = r.get("turns") or [(r["prompt"], False), (r["completion"], True)]
        text = "".join(seg for seg, _ in segments)
        if eos and not text.endswith(eos):
            segments = [*segments, (eos, True)]
            text += eos
        trained, at = [], 0
        for seg, train_it in segments:
            if train_it:
                trained.append((at, at + len(seg)))
            at += len(seg)
        enc = tokenizer(text, add_special_tokens=not templated, return_offsets_mapping=True)
        mask = [int(end > start and any(a <= start < b for a, b in trained)) for start, end in enc["offset_mapping"]]
        out.append({"input_ids": enc["input_ids"], "completion_mask": mask})
    return out


def _sft_config(loaded: LoadedModel, settings: TrainingSettings, *, steps: int, seed: int, work_dir: Path):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(work_dir / "trainer"),
        max_steps=steps,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=int(settings.warmup_ratio * steps),
        weight_decay=settings.weight_decay,
        max_length=settings.max_seq_length,
        completion_only_loss=True,
        bf16=loaded.bf16,
        logging_steps=max(1, min(25, steps // 20)),
        save_strategy="no",
        report_to=[],
        seed=seed,
        data_seed=seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=loaded.device == "cpu",
        # TRL turns activation checkpointing on by default: it saves GPU memory for LoRA/QLoRA, and
        # only costs time elsewhere (+20-28 % tokens/s without it on CPU, docs/BENCHMARKS.md).
        activation_checkpointing=loaded.device == "cuda" and loaded.method != "full",
        dataset_num_proc=None,
        **batching_arguments(loaded, settings),
    )


def batching_arguments(loaded: LoadedModel, settings: TrainingSettings) -> dict:
    """SFTConfig / TrainingArguments fields for `training.batching`.

    Not offered: batches grouped by length (transformers' group_by_length). It saves padding, but on
    classification data length follows the label, so its batches are nearly one class each and the
    model learns less per step (docs/BENCHMARKS.md §4).
    """
    if settings.batching == "padding_free":
        attn = getattr(loaded.model.config, "_attn_implementation", None)
        if loaded.kind != models.CAUSAL or not str(attn).startswith("flash_attention"):
            raise TrainingError(
                f"training.batching 'padding_free' needs a causal LM with FlashAttention 2 or 3 on a CUDA GPU "
                f"(this model uses attention '{attn}' on {loaded.device}); use 'by_length' instead"
            )
        return {"padding_free": True}
    return {}


def _progress_callback(steps: int, progress: ProgressFn | None):
    """A TrainerCallback that keeps the loss curve and reports (phase, step, total, loss) to `progress`."""
    from transformers import TrainerCallback

    class ProgressReporter(TrainerCallback):
        def __init__(self):
            self.curve: list[tuple[int, float]] = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.curve.append((state.global_step, float(logs["loss"])))
                if progress:
                    progress("training", state.global_step, steps, float(logs["loss"]))

        def on_step_end(self, args, state, control, **kwargs):
            if progress and state.global_step % max(1, steps // 50) == 0:
                progress("training", state.global_step, steps, self.curve[-1][1] if self.curve else None)

    return ProgressReporter()


def _save_weights(loaded: LoadedModel, out_dir: Path) -> str:
    """Save the adapter (or the whole model when fully fine-tuned), with the tokenizer; returns the folder.

    An encoder's adapter folder also holds the classifier's config.json, so its labels (id2label/label2id)
    travel with it (core.encoder.load_trained reads them back).
    """
    from transformers.utils import logging as hf_logging

    target = Path(out_dir) / ("model" if loaded.method == "full" else "adapter")
    hf_logging.disable_progress_bar()
    loaded.model.save_pretrained(target)
    if loaded.kind == models.ENCODER:
        loaded.tokenizer.save_pretrained(target)
        if loaded.method != "full":
            loaded.model.get_base_model().config.save_pretrained(target)
    return str(target)


def _count_tokens(dataset, steps: int, settings: TrainingSettings, n_rows: int) -> int:
    """Tokens the run will process: mean tokenized row length × rows seen."""
    try:
        lengths = [len(ids) for ids in dataset["input_ids"]]
    except (KeyError, TypeError):
        return 0
    mean = sum(lengths) / max(len(lengths), 1)
    return int(mean * steps * settings.batch_size * settings.grad_accum)
