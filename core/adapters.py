"""LoRA and QLoRA, the same for causal LMs and encoder classifiers: loading arguments and the adapter wrap."""

from __future__ import annotations

from core.spec import TrainingSettings


def load_kwargs(method: str, bf16: bool, *, keep_full: list[str] | None = None) -> dict:
    """`from_pretrained` arguments for the method: 4-bit NF4 on GPU 0 for QLoRA, else bf16 when asked.

    `keep_full`: modules left out of quantization (a new classifier head must train in full precision).
    """
    import torch

    if method != "qlora":
        return {"dtype": torch.bfloat16} if bf16 else {}
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float16,
        **({"llm_int8_skip_modules": keep_full} if keep_full else {}),
    )
    return {"quantization_config": config, "device_map": {"": 0}}


def with_adapter(model, settings: TrainingSettings, method: str, task_type: str):
    """The model ready for its method: wrapped in a LoRA adapter for lora/qlora (prepared for k-bit first)."""
    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    if method not in ("lora", "qlora"):
        return model
    from peft import LoraConfig, get_peft_model

    target = settings.lora_target_modules
    config = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=target if target == "all-linear" else list(target),
        task_type=task_type,
    )
    return get_peft_model(model, config)
