"""Score a trained model on the benchmark.

Classification on a causal LM: the log-likelihood of each label as the continuation of the prompt
(plus EOS), for all (row, label) pairs in length-sorted batches, then accuracy and macro F1 from
the argmax. QA and generative: batched greedy generation with left padding, then SQuAD-normalized
exact match and token F1. Loss everywhere: mean token loss on the gold completion, which predicts
better than accuracy at small scale (DataDecide).

Tokenization matches TRL's: prompt and prompt+completion are tokenized whole and the completion
starts where they diverge.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.prompts import completion_text, prompt_text


@dataclass
class EvalResult:
    metrics: dict[str, float]
    seconds: float
    n: int
    predictions: list[str]


def _encode_pair(tokenizer, prompt: str, completion: str, max_len: int) -> tuple[list[int], int]:
    """Token ids of prompt+completion(+EOS) and where the completion starts."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full = tokenizer(prompt + completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
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


def score_labels(model, tokenizer, rows: list[dict], labels: list[str], *, batch_size: int, max_len: int, device: str):
    """Per row, the log-likelihood of every label; and the gold label's token loss terms."""
    sequences = []
    for row in rows:
        p = prompt_text(row, "classification", tokenizer)
        for label in labels:
            sequences.append(_encode_pair(tokenizer, p, f" {label}", max_len))
    sums, counts = _sequence_logprobs(model, sequences, batch_size, tokenizer.pad_token_id, device)
    k = len(labels)
    return [sums[i * k : (i + 1) * k] for i in range(len(rows))], [counts[i * k : (i + 1) * k] for i in range(len(rows))]


def generate_answers(model, tokenizer, prompts: list[str], *, batch_size: int, max_new_tokens: int, max_len: int, device: str) -> list[str]:
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
    from core.metrics import compute_metrics

    start = time.perf_counter()
    results: dict[str, float] = {}
    if task == "classification":
        if not labels:
            raise ValueError("classification evaluation needs the study's label names")
        scores, counts = score_labels(model, tokenizer, rows, labels, batch_size=batch_size, max_len=max_len, device=device)
        predictions = [labels[max(range(len(labels)), key=lambda j: s[j])] for s in scores]
        references = [r["label"] for r in rows]
        if "loss" in metrics:
            gold = [labels.index(r["label"]) for r in rows]
            nll = -sum(s[g] for s, g in zip(scores, gold))
            n_tok = sum(c[g] for c, g in zip(counts, gold))
            results["loss"] = nll / max(n_tok, 1)
        results.update(compute_metrics(task, predictions, references, [m for m in metrics if m != "loss"], labels=labels))
    else:
        from core.normalize import extract_answer

        prompts = [prompt_text(r, task, tokenizer) for r in rows]
        generated = generate_answers(
            model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens, max_len=max_len, device=device
        )
        predictions = [_clean_generation(g, answer_extraction, extract_answer) for g in generated]
        if task == "qa":
            references = [list(r["answers"]["text"]) or [""] for r in rows]
        else:
            references = [[r["answer"]] for r in rows]
        if "loss" in metrics:
            seqs = [_encode_pair(tokenizer, p, completion_text(r, task, tokenizer), max_len) for p, r in zip(prompts, rows)]
            sums, counts = _sequence_logprobs(model, seqs, batch_size, tokenizer.pad_token_id, device)
            results["loss"] = -sum(sums) / max(sum(counts), 1)
        results.update(compute_metrics(task, predictions, references, [m for m in metrics if m != "loss"]))
    return EvalResult(
        metrics={k: float(v) for k, v in results.items()},
        seconds=round(time.perf_counter() - start, 3),
        n=len(rows),
        predictions=predictions,
    )


def _clean_generation(text: str, extraction: str, extract_answer) -> str:
    text = text.strip()
    if extraction != "none":
        found = extract_answer(text, extraction)
        if found is not None:
            return found
    return text.split("\n", 1)[0].strip()
