"""What-if variants of core.evaluation's label scoring, measured by bench.label_scoring.

They exist to give evidence for a change to core/evaluation.py, not to replace it: each returns
exactly what `score_labels` returns (per row, per label: summed log-prob and token count of the
label continuation + EOS), and the benchmark checks the predictions are identical.

- `score_labels_kept`: the same batches, but the LM head and log-softmax run only at the positions
  that predict a label token (`logits_to_keep` = the union of those positions in the batch).
- `score_labels_shared_prefix`: each row's prompt runs once (left-padded batch, KV cache), the
  cache is repeated once per label, and only the label tokens run through the model; prompts and
  prompt+label texts are tokenized in two batched tokenizer calls.
"""

from __future__ import annotations

from core.prompts import prompt_text


def _shared_start(p_ids: list[int], full: list[int]) -> int:
    start = 0
    for a, b in zip(p_ids, full):
        if a != b:
            break
        start += 1
    return start


def score_labels_kept(model, tokenizer, rows, labels, *, batch_size: int, max_len: int, device: str):
    import torch

    from core import evaluation

    def seq_logprobs(model, sequences, batch_size, pad_id, device):
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
                pred = mask[:, 1:]  # position t predicts token t + 1
                keep = pred.any(0).nonzero().squeeze(-1)
                logits = model(input_ids=ids, attention_mask=attn, logits_to_keep=keep).logits.float()
                logp = torch.log_softmax(logits, dim=-1)
                tok = logp.gather(-1, ids[:, keep + 1].unsqueeze(-1)).squeeze(-1)
                m = pred[:, keep]
                s = (tok * m).sum(-1).tolist()
                c = m.sum(-1).tolist()
                for r, i in enumerate(idx):
                    sums[i], counts[i] = s[r], int(c[r])
        return sums, counts

    original = evaluation._sequence_logprobs
    evaluation._sequence_logprobs = seq_logprobs
    try:
        return evaluation.score_labels(model, tokenizer, rows, labels, batch_size=batch_size, max_len=max_len, device=device)
    finally:
        evaluation._sequence_logprobs = original


def score_labels_shared_prefix(model, tokenizer, rows, labels, *, batch_size: int, max_len: int, device: str):
    """`batch_size` counts rows here (each row brings len(labels) label continuations)."""
    import torch

    k = len(labels)
    pad = tokenizer.pad_token_id
    eos = tokenizer.eos_token_id
    prompts = [prompt_text(r, "classification", tokenizer) for r in rows]
    p_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    fulls = tokenizer([p + f" {lab}" for p in prompts for lab in labels], add_special_tokens=False)["input_ids"]
    items = []  # (shared prefix ids, [suffix ids per label], [completion offset in suffix per label])
    for i, p in enumerate(p_ids):
        pairs = []
        for j in range(k):
            full = fulls[i * k + j] + [eos]
            start = _shared_start(p, full)
            if len(full) > max_len:  # as core.evaluation._encode_pair: cut the prompt from the left
                cut = len(full) - max_len
                full, start = full[cut:], max(start - cut, 0)
            pairs.append((full, max(start, 1)))
        common = min(s for _, s in pairs)
        prefix = pairs[0][0][:common]
        items.append((prefix, [f[common:] for f, _ in pairs], [s - common for _, s in pairs]))
        assert all(f[:common] == prefix for f, _ in pairs), "label continuations must share the prompt prefix"

    sums = [[0.0] * k for _ in rows]
    counts = [[0] * k for _ in rows]
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
                pos2 = attn.sum(-1).repeat_interleave(k, 0).unsqueeze(1) + torch.arange(steps, device=device).unsqueeze(0)
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
