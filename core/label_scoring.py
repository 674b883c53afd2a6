"""Classification scoring for causal LMs: the log-likelihood of every label (+EOS) after each prompt.

`score_labels` runs each prompt once. The labels' tokens after the prompt form a token trie (labels
sharing a first token share its node); the trie's nodes ride in the same forward pass as the
prompt, after it, each attending to the prompt and to its own ancestors only (a 4D attention mask,
"tree attention"). A label's first token is scored at the prompt's last position, its later tokens
and EOS at its nodes: one forward per batch, no KV cache repeated per label, the LM head only on
the positions that predict a label token. `score_labels_full` is the reference (every prompt/label
pair as its own sequence); tests and a check on each call's first prompt hold the two equal, and a
model that does not honour a custom 4D mask falls back to the reference (docs/BENCHMARKS.md §3).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from core.evaluation import _encode_pair, _sequence_logprobs

log = logging.getLogger(__name__)

LOGITS_BUDGET = 32 * 2**20  # float32 logits a batch may hold (128 MiB): a 150k vocabulary gets ~17 prompts a batch


def score_labels_full(
    model, tokenizer, prompts: list[str], labels: list[str], *, batch_size: int, max_len: int, device: str
):
    """Reference scorer: every (prompt, label) pair as its own full sequence. Simple and general."""
    sequences = [_encode_pair(tokenizer, p, f" {label}", max_len) for p in prompts for label in labels]
    sums, counts = _sequence_logprobs(model, sequences, batch_size, tokenizer.pad_token_id, device)
    k = len(labels)
    return [sums[i * k : (i + 1) * k] for i in range(len(prompts))], [
        counts[i * k : (i + 1) * k] for i in range(len(prompts))
    ]


def score_labels(
    model, tokenizer, prompts: list[str], labels: list[str], *, batch_size: int, max_len: int, device: str
):
    """Per prompt, the log-likelihood of every label (+EOS), and its token count (as `score_labels_full`).

    `batch_size` counts prompts: each prompt is one row of the batch, its labels' trie included.
    """
    try:
        trees = [_label_tree(tokenizer, p, ids, max_len) for p, ids in zip(*_tokenized(tokenizer, prompts, labels))]
        sums, counts = _score_trees(model, tokenizer.pad_token_id, trees, len(labels), batch_size, device)
        _check_against_reference(model, tokenizer, prompts, labels, sums, counts, max_len, device)
        return sums, counts
    except (AttributeError, TypeError, NotImplementedError, ValueError, RuntimeError) as err:
        # A model whose attention ignores a custom mask (or labels cut differently by truncation) is
        # scored the simple way; said in the log so a bug in the fast path cannot hide here.
        log.warning("label scoring falls back to the reference scorer: %s: %s", type(err).__name__, err)
        return score_labels_full(
            model, tokenizer, prompts, labels, batch_size=batch_size, max_len=max_len, device=device
        )


@dataclass
class _Tree:
    """One prompt's shared prefix and its labels' trie."""

    prefix: list[int]
    tokens: list[int] = field(default_factory=list)  # node tokens, parents before children
    parents: list[int] = field(default_factory=list)  # -1: the prefix's last position
    depths: list[int] = field(default_factory=list)
    targets: list[list[tuple[int, int, bool]]] = field(default_factory=list)  # per label: (source node, token, counted)


def _tokenized(tokenizer, prompts, labels):
    """Prompt ids, and per prompt the ids of prompt+label+EOS for each label (tokenized whole, as TRL does)."""
    fast = getattr(tokenizer, "backend_tokenizer", None)
    texts = [p + f" {label}" for p in prompts for label in labels]
    if fast is not None:  # the Rust tokenizer directly: a third of the wrapper's time on short rows
        p_ids = [e.ids for e in fast.encode_batch_fast(prompts, add_special_tokens=False)]
        fulls = [e.ids for e in fast.encode_batch_fast(texts, add_special_tokens=False)]
    else:
        p_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
        fulls = tokenizer(texts, add_special_tokens=False)["input_ids"]
    eos = [tokenizer.eos_token_id]
    k = len(labels)
    return p_ids, [[f + eos for f in fulls[i * k : (i + 1) * k]] for i in range(len(prompts))]


def _label_tree(tokenizer, p: list[int], fulls: list[list[int]], max_len: int) -> _Tree:
    pairs = []
    for full in fulls:
        start = _shared_start(p, full)
        if len(full) > max_len:  # as _encode_pair: cut the prompt from the left
            cut = len(full) - max_len
            full, start = full[cut:], max(start - cut, 0)
        pairs.append((full, max(start, 1)))
    common = min(s for _, s in pairs)
    prefix = pairs[0][0][:common]
    if not all(f[:common] == prefix for f, _ in pairs):
        raise ValueError("label continuations do not share the prompt prefix (truncation cut them differently)")
    tree = _Tree(prefix=prefix)
    nodes: dict[tuple[int, ...], int] = {}
    for full, start in pairs:
        suffix, parent, steps = full[common:], -1, []
        for d, token in enumerate(suffix):
            steps.append((parent, token, common + d >= start))
            if d == len(suffix) - 1:
                break  # the last token (EOS) is only a target
            key = tuple(suffix[: d + 1])
            if key not in nodes:
                nodes[key] = len(tree.tokens)
                tree.tokens.append(token)
                tree.parents.append(parent)
                tree.depths.append(d)
            parent = nodes[key]
        tree.targets.append(steps)
    return tree


def _shared_start(p_ids: list[int], full: list[int]) -> int:
    start = 0
    for a, b in zip(p_ids, full):
        if a != b:
            break
        start += 1
    return start


def _score_trees(model, pad: int, trees: list[_Tree], k: int, batch_size: int, device: str):
    import torch

    sums = [[0.0] * k for _ in trees]
    counts = [[0] * k for _ in trees]
    model.eval()
    with torch.inference_mode():
        order = sorted(range(len(trees)), key=lambda i: (len(trees[i].prefix), len(trees[i].tokens)))
        vocab = model.get_output_embeddings().weight.shape[0]
        nodes = max((len(t.tokens) for t in trees), default=0)
        rows = max(1, min(batch_size, LOGITS_BUDGET // ((nodes + 1) * vocab)))
        for b in range(0, len(order), rows):
            idx = order[b : b + rows]
            batch = [trees[i] for i in idx]
            s, c = _score_batch(model, pad, batch, k, device)
            for r, i in enumerate(idx):
                sums[i], counts[i] = s[r], c[r]
    return sums, counts


def _score_batch(model, pad: int, batch: list[_Tree], k: int, device: str):
    """One forward: prompts left-padded to width W, then each prompt's trie nodes (T columns)."""
    import torch

    n, width = len(batch), max(len(t.prefix) for t in batch)
    nodes = max(len(t.tokens) for t in batch)
    ids = torch.full((n, width + nodes), pad, dtype=torch.long)
    pos = torch.zeros((n, width + nodes), dtype=torch.long)
    for r, t in enumerate(batch):
        ids[r, width - len(t.prefix) : width] = torch.tensor(t.prefix)
        pos[r, width - len(t.prefix) : width] = torch.arange(len(t.prefix))
        ids[r, width : width + len(t.tokens)] = torch.tensor(t.tokens, dtype=torch.long)
        pos[r, width : width + len(t.tokens)] = len(t.prefix) + torch.tensor(t.depths, dtype=torch.long)
    dtype = model.get_input_embeddings().weight.dtype
    mask = _tree_mask(batch, width, nodes, dtype)
    logits = model(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=pos.to(device),
        logits_to_keep=nodes + 1,  # the prompt's last position, then every node
        use_cache=False,
    ).logits.float()
    log_norm = torch.logsumexp(logits, dim=-1)  # [n, nodes + 1]
    rows, cols, toks, owner, counted = [], [], [], [], []
    for r, t in enumerate(batch):
        for j, steps in enumerate(t.targets):
            for source, token, keep in steps:
                rows.append(r)
                cols.append(source + 1)
                toks.append(token)
                owner.append(r * k + j)
                counted.append(keep)
    rows_t, cols_t = torch.tensor(rows, device=device), torch.tensor(cols, device=device)
    picked = logits[rows_t, cols_t, torch.tensor(toks, device=device)] - log_norm[rows_t, cols_t]
    keep_t = torch.tensor(counted, device=device)
    total = torch.zeros(n * k, device=device).index_add_(0, torch.tensor(owner, device=device), picked * keep_t)
    many = torch.zeros(n * k, dtype=torch.long, device=device).index_add_(
        0, torch.tensor(owner, device=device), keep_t.long()
    )
    total, many = total.view(n, k).tolist(), many.view(n, k).tolist()
    return total, many


def _tree_mask(batch: list[_Tree], width: int, nodes: int, dtype):
    """Additive [n, 1, W+T, W+T] mask: causal over the prompt, each node sees the prompt and its ancestors."""
    import torch

    n, size = len(batch), width + nodes
    lo = torch.tensor([width - len(t.prefix) for t in batch]).view(n, 1, 1)
    q = torch.arange(size).view(1, size, 1)
    kv = torch.arange(size).view(1, 1, size)
    allowed = (kv >= lo) & (kv < width) & ((kv <= q) | (q >= width))  # the prompt: causal; nodes see all of it
    blocks: dict[tuple[int, ...], torch.Tensor] = {}
    trie = torch.zeros((n, nodes, nodes), dtype=torch.bool)
    for r, t in enumerate(batch):
        key = tuple(t.parents)
        if key not in blocks:
            blocks[key] = _ancestors(t.parents, nodes)
        trie[r] = blocks[key]
    allowed[:, width:, width:] = trie
    allowed |= torch.eye(size, dtype=torch.bool)  # every position sees itself: padding has no all-masked row
    mask = torch.zeros((n, 1, size, size), dtype=dtype)
    return mask.masked_fill_(~allowed.unsqueeze(1), torch.finfo(dtype).min)


def _ancestors(parents: list[int], nodes: int):
    """[T, T] bool: node a sees node b when b is a or one of a's ancestors."""
    import torch

    block = torch.eye(nodes, dtype=torch.bool)
    for a, parent in enumerate(parents):
        if parent >= 0:
            block[a] |= block[parent]
    return block


def _check_against_reference(model, tokenizer, prompts, labels, sums, counts, max_len, device) -> None:
    """The first prompt scored both ways must agree: a model ignoring the tree mask would not."""
    if not prompts:
        return
    ref_s, ref_c = score_labels_full(
        model, tokenizer, prompts[:1], labels, batch_size=len(labels), max_len=max_len, device=device
    )
    tol = 1e-3 if model.get_input_embeddings().weight.dtype.itemsize >= 4 else 5e-2
    worst = max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(sums[0], ref_s[0]))
    if ref_c[0] != counts[0] or worst > tol:
        raise ValueError(f"the tree-attention scores differ from the reference by {worst:.3g} on the first prompt")
