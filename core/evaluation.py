"""Score a trained model on the benchmark: `evaluate_model` hands the rows to their task (core/tasks).

The scorers the tasks share live here. Label scoring: the log-likelihood of each label as the
continuation of the prompt (plus EOS), for all (row, label) pairs in length-sorted batches.
Sequence scoring: the log-likelihood of any completions. Generation: batched greedy generation
with left padding, then SQuAD-normalized exact match and token F1 (`generate_and_score`). Loss
everywhere: mean token loss on the gold completion, which predicts better than accuracy at small
scale (DataDecide).

Tokenization matches TRL's: prompt and prompt+completion are tokenized whole and the completion
starts where they diverge.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from core import tasks

log = logging.getLogger(__name__)


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


def score_labels_full(
    model, tokenizer, prompts: list[str], labels: list[str], *, batch_size: int, max_len: int, device: str
):
    """Reference scorer: every (prompt, label) pair as its own full sequence. Simple and general."""
    sequences = []
    for p in prompts:
        for label in labels:
            sequences.append(_encode_pair(tokenizer, p, f" {label}", max_len))
    sums, counts = _sequence_logprobs(model, sequences, batch_size, tokenizer.pad_token_id, device)
    k = len(labels)
    return [sums[i * k : (i + 1) * k] for i in range(len(prompts))], [
        counts[i * k : (i + 1) * k] for i in range(len(prompts))
    ]


def score_labels(
    model, tokenizer, prompts: list[str], labels: list[str], *, batch_size: int, max_len: int, device: str
):
    """Per prompt, the log-likelihood of every label (+EOS), and its token count.

    Each prompt runs once (a left-padded batch, keeping its KV cache); the cache is repeated once per
    label and only the label tokens run through the model. Same numbers as `score_labels_full`
    (tests check it), 3-4x faster on the demo (docs/BENCHMARKS.md). `batch_size` counts sequences,
    as for the other scorers: a batch holds batch_size // len(labels) prompts. Models whose cache
    cannot be repeated fall back to the reference scorer.
    """
    try:
        return _score_labels_shared_prefix(
            model,
            tokenizer,
            prompts,
            labels,
            batch_size=max(1, batch_size // max(len(labels), 1)),
            max_len=max_len,
            device=device,
        )
    except (AttributeError, TypeError, NotImplementedError, ValueError) as err:
        # A model without a repeatable KV cache (or labels that do not share the prompt's tokens)
        # is scored the simple way; said in the log so a bug in the fast path cannot hide here.
        log.warning("label scoring falls back to the reference scorer: %s: %s", type(err).__name__, err)
        return score_labels_full(
            model, tokenizer, prompts, labels, batch_size=batch_size, max_len=max_len, device=device
        )


def _shared_start(p_ids: list[int], full: list[int]) -> int:
    start = 0
    for a, b in zip(p_ids, full):
        if a != b:
            break
        start += 1
    return start


def _score_labels_shared_prefix(model, tokenizer, prompts, labels, *, batch_size: int, max_len: int, device: str):
    """`batch_size` counts prompts here (each brings len(labels) label continuations)."""
    import torch

    k = len(labels)
    pad = tokenizer.pad_token_id
    eos = tokenizer.eos_token_id
    p_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    fulls = tokenizer([p + f" {lab}" for p in prompts for lab in labels], add_special_tokens=False)["input_ids"]
    items = []  # (shared prefix ids, [suffix ids per label], [completion offset in suffix per label])
    for i, p in enumerate(p_ids):
        pairs = []
        for j in range(k):
            full = fulls[i * k + j] + [eos]
            start = _shared_start(p, full)
            if len(full) > max_len:  # as _encode_pair: cut the prompt from the left
                cut = len(full) - max_len
                full, start = full[cut:], max(start - cut, 0)
            pairs.append((full, max(start, 1)))
        common = min(s for _, s in pairs)
        prefix = pairs[0][0][:common]
        if not all(f[:common] == prefix for f, _ in pairs):
            raise ValueError("label continuations do not share the prompt prefix")
        items.append((prefix, [f[common:] for f, _ in pairs], [s - common for _, s in pairs]))

    sums = [[0.0] * k for _ in prompts]
    counts = [[0] * k for _ in prompts]
    model.eval()
    with torch.inference_mode():
        order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            n = len(idx)
            width = max(len(items[i][0]) for i in idx)
            ids = torch.full((n, width), pad, dtype=torch.long)
            attn = torch.zeros((n, width), dtype=torch.long)
            for r, i in enumerate(idx):  # left padding: every prompt ends at the last column
                pre = items[i][0]
                ids[r, width - len(pre) :] = torch.tensor(pre)
                attn[r, width - len(pre) :] = 1
            pos = (attn.cumsum(-1) - 1).clamp(min=0)
            ids, attn, pos = ids.to(device), attn.to(device), pos.to(device)
            out = model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True, logits_to_keep=1)
            first = torch.log_softmax(out.logits[:, -1].float(), dim=-1).repeat_interleave(k, 0)  # [n*k, V]
            cache = out.past_key_values
            cache.batch_repeat_interleave(k)
            span = max(len(s) for i in idx for s in items[i][1])
            steps = max(span - 1, 1)
            sid = torch.full((n * k, steps), pad, dtype=torch.long)
            smask = torch.zeros((n * k, steps), dtype=torch.long)
            tgt = torch.zeros((n * k, span), dtype=torch.long)
            tmask = torch.zeros((n * k, span), dtype=torch.bool)
            for r, i in enumerate(idx):
                for j, suf in enumerate(items[i][1]):
                    q = r * k + j
                    if len(suf) > 1:
                        sid[q, : len(suf) - 1] = torch.tensor(suf[:-1])
                        smask[q, : len(suf) - 1] = 1
                    tgt[q, : len(suf)] = torch.tensor(suf)
                    tmask[q, items[i][2][j] : len(suf)] = True
            sid, smask, tgt, tmask = sid.to(device), smask.to(device), tgt.to(device), tmask.to(device)
            lp = torch.zeros((n * k, span), device=device)
            lp[:, 0] = first.gather(-1, tgt[:, :1]).squeeze(-1)
            if span > 1:
                attn2 = torch.cat([attn.repeat_interleave(k, 0), smask], dim=1)
                pos2 = attn.sum(-1).repeat_interleave(k, 0).unsqueeze(1) + torch.arange(steps, device=device).unsqueeze(
                    0
                )
                logits2 = model(
                    input_ids=sid, attention_mask=attn2, position_ids=pos2, past_key_values=cache, use_cache=False
                ).logits.float()
                lp[:, 1:] = torch.log_softmax(logits2, dim=-1).gather(-1, tgt[:, 1:].unsqueeze(-1)).squeeze(-1)
            s = (lp * tmask).sum(-1).tolist()
            c = tmask.sum(-1).tolist()
            for r, i in enumerate(idx):
                for j in range(k):
                    sums[i][j], counts[i][j] = s[r * k + j], int(c[r * k + j])
    return sums, counts


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
