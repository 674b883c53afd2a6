"""Turn normalized rows into the prompt/completion text a causal LM trains and is scored on.

Each task lays out its own rows (core/tasks); training and evaluation both come through here, so
the model is scored on exactly the format it was trained on. Models with a chat template get
their template where the task uses one; others a plain `Field: value` layout.
"""

from __future__ import annotations

from core import tasks


def prompt_text(row: dict, task: str, tokenizer=None) -> str:
    return tasks.get(task).prompt(row, tokenizer)


def completion_text(row: dict, task: str, tokenizer=None) -> str:
    """The training target. Plain layouts put a space after the colon; chat templates do not."""
    return tasks.get(task).completion(row, tokenizer)


def to_prompt_completion(rows: list[dict], task: str, tokenizer=None) -> list[dict]:
    """{"prompt", "completion"} per row, plus "turns" [(segment, trained?), ...] for a multi-turn chat
    row, whose every assistant turn is trained (core.train tokenizes those itself)."""
    kind = tasks.get(task)
    out = []
    for r in rows:
        row = {"prompt": kind.prompt(r, tokenizer), "completion": kind.completion(r, tokenizer)}
        turns = kind.turns(r, tokenizer)
        if turns is not None:
            row["turns"] = turns
        out.append(row)
    return out
