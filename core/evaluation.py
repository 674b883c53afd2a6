"""Score a trained model on the benchmark: `evaluate_model` hands the rows to their task (core/tasks).

The scorers the tasks share live here (label scoring for classification is core/label_scoring.py).
Sequence scoring: the log-likelihood of any completions. Generation: batched greedy generation
with left padding, then SQuAD-normalized exact match and token F1 (`generate_and_score`). Loss
everywhere: mean token loss on the gold completion, which predicts better than accuracy at small
scale (DataDecide).

Tokenization matches TRL's: prompt and prompt+completion are tokenized whole and the completion
starts where they diverge.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from core import tasks


@dataclass
class EvalResult:
    metrics: dict[str, float]
    seconds: float
    n: int
    predictions: list[str]


def _encode_pair(tokenizer, prompt: str, completion: str, max_len: int, *, eos: bool = True) -> tuple[list[int], int]:
    """Token ids of prompt+completion(+EOS) and where the completion starts."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full = tokenizer(prompt + completion, add_special_tokens=False)["input_ids"]
    full += [tokenizer.eos_token_id] if eos else []
    start = 0
    for a, b in zip(p, full):
        if a != b:
            break
        start += 1
    if len(full) > max_len:  # keep the completion: cut the prompt from the left
        cut = len(full) - max_len
        full, start = full[cut:], max(start - cut, 0)
    return full, start


def _sequence_logprobs(model, sequences: list[tuple[list[int], int]], batch_size: int, pad_id: int, device: str):
    """Sum and count of completion-token log-probs for each (ids, completion_start)."""
    import torch

    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]))
    sums = [0.0] * len(sequences)
    counts = [0] * len(sequences)
    model.eval()
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            width = max(len(sequences[i][0]) for i in idx)
            ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            attn = torch.zeros((len(idx), width), dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.bool)
            for r, i in enumerate(idx):
                seq, start = sequences[i]
                ids[r, : len(seq)] = torch.tensor(seq)
                attn[r, : len(seq)] = 1
                mask[r, max(start, 1) : len(seq)] = True
            ids, attn, mask = ids.to(device), attn.to(device), mask.to(device)
            logits = model(input_ids=ids, attention_mask=attn).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            tok = logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            m = mask[:, 1:]
            s = (tok * m).sum(-1).tolist()
            c = m.sum(-1).tolist()
            for r, i in enumerate(idx):
                sums[i], counts[i] = s[r], int(c[r])
    return sums, counts


def score_sequences(
    model,
    tokenizer,
    prompts: list[str],
    completions: list[str],
    *,
    batch_size: int,
    max_len: int,
    device: str,
    eos: bool = True,
) -> tuple[list[float], list[int]]:
    """Per (prompt, completion): the completion's summed token log-likelihood (+EOS with `eos`) and token count."""
    sequences = [_encode_pair(tokenizer, p, c, max_len, eos=eos) for p, c in zip(prompts, completions)]
    return _sequence_logprobs(model, sequences, batch_size, tokenizer.pad_token_id, device)


def generate_answers(
    model, tokenizer, prompts: list[str], *, batch_size: int, max_new_tokens: int, max_len: int, device: str
) -> list[str]:
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    out: list[str] = [""] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    model.eval()
    try:
        with torch.inference_mode():
            for b in range(0, len(order), batch_size):
                idx = order[b : b + batch_size]
                enc = tokenizer(
                    [prompts[i] for i in idx],
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=max(8, max_len - max_new_tokens),
                    add_special_tokens=False,
                ).to(device)
                gen = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
                texts = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
                for i, t in zip(idx, texts):
                    out[i] = t
    finally:
        tokenizer.padding_side = side
    return out


def evaluate_model(
    model,
    tokenizer,
    rows: list[dict],
    *,
    task: str,
    metrics: list[str],
    labels: list[str] | None = None,
    answer_extraction: str = "none",
    batch_size: int = 64,
    max_new_tokens: int = 32,
    max_len: int = 256,
    device: str = "cpu",
) -> EvalResult:
    start = time.perf_counter()
    settings = tasks.EvalSettings(
        labels=labels,
        answer_extraction=answer_extraction,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        max_len=max_len,
        device=device,
    )
    results, predictions = tasks.get(task).evaluate(model, tokenizer, rows, list(metrics), settings)
    return EvalResult(
        metrics={k: float(v) for k, v in results.items()},
        seconds=round(time.perf_counter() - start, 3),
        n=len(rows),
        predictions=predictions,
    )


def generate_and_score(
    task, model, tokenizer, rows, references, metrics, settings, *, clean
) -> tuple[dict[str, float], list[str]]:
    """Greedy generations, `clean`ed into predictions and scored against `references` (lists of gold answers)."""
    from core.metrics import compute_metrics

    prompts = [task.prompt(r, tokenizer) for r in rows]
    generated = generate_answers(model, tokenizer, prompts, max_new_tokens=settings.max_new_tokens, **settings.batching)
    predictions = [clean(g) for g in generated]
    results: dict[str, float] = {}
    if "loss" in metrics:
        completions = [task.completion(r, tokenizer) for r in rows]
        sums, counts = score_sequences(model, tokenizer, prompts, completions, **settings.batching)
        results["loss"] = -sum(sums) / max(sum(counts), 1)
    results.update(compute_metrics(task.name, predictions, references, [m for m in metrics if m != "loss"]))
    return results, predictions


def first_line(text: str) -> str:
    """A generation's answer: its first non-blank line, stripped."""
    return text.strip().split("\n", 1)[0].strip()
