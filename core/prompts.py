"""Turn normalized rows into the prompt/completion text a causal LM trains and is scored on.

One function per task, used by both training and evaluation, so the model is scored on exactly
the format it was trained on. Models with a chat template get their template; others a plain
`Field: value` layout.
"""

from __future__ import annotations


def _render_messages(messages: list[dict]) -> str:
    lines = [f"{m.get('role', 'user').capitalize()}: {m.get('content', '')}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


def prompt_text(row: dict, task: str, tokenizer=None) -> str:
    if task == "classification":
        return f"Text: {row['text']}\nLabel:"
    if task == "qa":
        return f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer:"
    prompt = row["prompt"]
    template = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
    if template:
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if isinstance(prompt, list):
        return _render_messages(prompt)
    return f"{prompt}\nAnswer:"


def completion_text(row: dict, task: str, tokenizer=None) -> str:
    """The training target. Plain layouts put a space after the colon; chat templates do not."""
    if task == "classification":
        return f" {row['label']}"
    if task == "qa":
        texts = row["answers"]["text"]
        return f" {texts[0] if texts else ''}"
    answer = row.get("answer_full") or row["answer"]
    template = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
    return answer if template else f" {answer}"


def to_prompt_completion(rows: list[dict], task: str, tokenizer=None) -> list[dict]:
    return [{"prompt": prompt_text(r, task, tokenizer), "completion": completion_text(r, task, tokenizer)} for r in rows]
