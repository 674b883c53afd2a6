"""GPU check: train and evaluate the built-in models on CUDA, and report speed, memory and MFU.

Three configurations, each trained through core.train exactly as a run trains, on the offline demo
data (D0 + the first helpful rows, 3,000 rows; labels: the benchmark's sorted label set), then
scored on the 600-row demo benchmark with core.evaluation.evaluate_model:
- tiny:  builtin:tiny-lm, method full (the random-init causal LM; prompt/completion rows), bf16 auto;
- lora:  builtin:minilm, method lora (the pretrained BERT encoder as a sequence classifier), bf16 auto;
- qlora: builtin:minilm, method qlora (4-bit NF4 through bitsandbytes), bf16 on.
Batch 64, max_seq_length 64, 300 optimizer steps (60 with --quick). Per configuration it prints
train tokens/s, steps, seconds, peak GPU memory (torch.cuda.max_memory_allocated over load, train
and evaluation, reset between configurations), accuracy, macro-F1 and evaluation seconds, and MFU.

MFU = model FLOPs per second / the GPU's peak dense bf16 FLOPs (PEAK_BF16_TFLOPS below, by device
name; --peak-tflops for another GPU, else MFU is n/a). Model FLOPs per training token are counted
over the weights that do matrix products (every nn.Linear, LoRA's A/B and 4-bit layers included;
embedding lookups excluded, as in the usual 6N): 2 N forward + 2 N backward to the activations +
2 N_trainable backward to the weights, so 6 N for full fine-tuning and about 4 N for LoRA/QLoRA
(the frozen base needs no weight gradients). Attention's score products (small at 64 tokens) and
activation recomputation (gradient checkpointing, on for LoRA/QLoRA on CUDA) are not counted: this
is model FLOPs, not hardware FLOPs. Tokens are TrainResult.train_tokens (mean non-pad row length x
rows seen), so padding is not counted as work either. Both models are far too small to fill a
modern GPU: expect MFU well under 1 %; the figure says how launch-bound a run is, not how good.

Writes bench/results/gpu_check.json and prints a Markdown table for docs/BENCHMARKS.md. Without
CUDA it refuses (exit 2) before loading anything; a configuration that fails (e.g. bitsandbytes
without CUDA kernels) is reported with its error while the others run (exit 1).

Run: python -m bench.gpu_check [--quick] [--only tiny|lora|qlora] [--steps N] [--peak-tflops T]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from importlib import metadata
from pathlib import Path

from bench._common import RESULTS_DIR, print_table, setup_env, write_result

STEPS = 300
QUICK_STEPS = 60
N_ROWS = 3000  # D0 (300 rows) + the first helpful rows
BATCH = 64
MAX_LEN = 64
EVAL_BATCH = 256
METRICS = ["accuracy", "macro_f1", "gold_prob", "loss"]
TASK = "classification"

# name -> model, TrainingSettings fields (on top of the shared ones in `settings_for`).
CONFIGS = {
    "tiny": ("builtin:tiny-lm", {"method": "full", "learning_rate": 1e-3, "bf16": "auto"}),
    "lora": ("builtin:minilm", {"method": "lora", "learning_rate": 5e-4, "bf16": "auto"}),
    "qlora": ("builtin:minilm", {"method": "qlora", "learning_rate": 5e-4, "bf16": "on"}),
}

# Peak dense (no sparsity) bf16 tensor-core TFLOP/s, matched in order against torch.cuda.get_device_name()
# (more specific names first: "A100" before "A10", "L40S" before "L4"). GPUs without bf16 tensor cores
# (T4, V100) give their fp16 figure, said in the label.
PEAK_BF16_TFLOPS: list[tuple[str, float, str]] = [
    (r"\bB200\b", 2250.0, "B200 bf16 dense"),
    (r"\bH100\b.*\bPCIe\b", 756.0, "H100 PCIe bf16 dense"),
    (r"\bH100\b.*\bNVL\b", 835.0, "H100 NVL bf16 dense"),
    (r"\bH200\b.*\bNVL\b", 835.0, "H200 NVL bf16 dense"),
    (r"\bGH200\b", 989.0, "GH200 bf16 dense"),
    (r"\bH200\b", 989.0, "H200 SXM bf16 dense"),
    (r"\bH100\b", 989.0, "H100 SXM bf16 dense"),
    (r"\bA100\b", 312.0, "A100 bf16 dense"),
    (r"\bL40S\b", 362.0, "L40S bf16 dense"),
    (r"\bL4\b", 121.0, "L4 bf16 dense"),
    (r"\bA10G?\b", 125.0, "A10/A10G bf16 dense"),
    (r"\bT4\b", 65.0, "T4 fp16 dense (no bf16 tensor cores)"),
    (r"\bV100\b", 125.0, "V100 fp16 dense (no bf16 tensor cores)"),
]

NO_CUDA = (
    "bench.gpu_check needs a CUDA GPU and torch.cuda.is_available() is False here: run "
    "`python -m bench.gpu_check` (add --quick for a short run) from a checkout on a GPU worker, with the "
    "CUDA build of torch in .venv (docs/OPERATIONS.md, 'GPU check')"
)


def peak_tflops(device_name: str) -> tuple[float | None, str]:
    """The device's peak dense bf16 TFLOP/s and where the figure comes from; (None, why) when unknown."""
    for pattern, tflops, label in PEAK_BF16_TFLOPS:
        if re.search(pattern, device_name):
            return tflops, label
    return None, f"peak bf16 FLOP/s unknown for '{device_name}' (give --peak-tflops)"


def flops_per_token(model) -> dict:
    """Training FLOPs per token from the matmul weights: 4 N + 2 N_trainable (see the module docstring).

    N counts every nn.Linear (bitsandbytes' Linear4bit is one; its packed weight is counted by shape),
    LoRA's A and B included, a PEFT modules_to_save original left out (it does not run).
    """
    import torch

    n_matmul = n_trainable = 0
    for name, module in model.named_modules():
        if "original_module" in name.split(".") or not isinstance(module, torch.nn.Linear):
            continue
        n = module.in_features * module.out_features + (module.out_features if module.bias is not None else 0)
        n_matmul += n
        if module.weight.requires_grad:
            n_trainable += n
    params = trainable = 0
    for p in model.parameters():
        shape = getattr(getattr(p, "quant_state", None), "shape", None)  # a 4-bit weight: its unpacked shape
        numel = int(torch.Size(shape).numel()) if shape is not None else p.numel()
        params += numel
        trainable += numel if p.requires_grad else 0
    return {
        "flops_per_token": 4 * n_matmul + 2 * n_trainable,
        "matmul_params": n_matmul,
        "trainable_matmul_params": n_trainable,
        "params": params,
        "trainable_params": trainable,
    }


def settings_for(name: str, steps: int):
    from core.spec import TrainingSettings

    return TrainingSettings(
        **CONFIGS[name][1],
        max_steps=steps,
        batch_size=BATCH,
        max_seq_length=MAX_LEN,
        eval_batch_size=EVAL_BATCH,
        warmup_ratio=0.05,
    )


def demo_rows(n_rows: int = N_ROWS) -> tuple[list[dict], list[dict], list[str]]:
    """Training rows (D0, then helpful up to n_rows), the benchmark rows, and the sorted benchmark labels."""
    from core.demo import ensure_demo_data

    folder = ensure_demo_data()

    def read(name: str) -> list[dict]:
        with (folder / f"{name}.jsonl").open(encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    d0 = read("d0")
    train_rows = d0 + read("helpful")[: max(0, n_rows - len(d0))]
    benchmark = read("benchmark")
    return train_rows, benchmark, sorted({r["label"] for r in benchmark})


def run_config(
    name: str, train_rows: list[dict], benchmark: list[dict], labels: list[str], *, steps: int, peak: float | None
) -> dict:
    """Load, train and evaluate one configuration; its figures (raises on failure)."""
    import torch

    from core.evaluation import evaluate_model
    from core.models import ENCODER
    from core.prompts import to_prompt_completion
    from core.train import load_model, train

    model_ref = CONFIGS[name][0]
    settings = settings_for(name, steps)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    loaded = load_model(model_ref, settings, labels=labels, seed=0)
    load_seconds = time.perf_counter() - start
    # The system's temp folder: in the image, the folder beside WORKBENCH_HOME may not be writable.
    work = Path(tempfile.mkdtemp(prefix=f"workbench-gpu-check-{name}-"))
    try:
        counts = flops_per_token(loaded.model)
        # An encoder trains on the {"text", "label"} rows; a causal LM on their prompt/completion text.
        rows = train_rows if loaded.kind == ENCODER else to_prompt_completion(train_rows, TASK, loaded.tokenizer)
        trained = train(loaded, rows, settings, seed=0, out_dir=work, save=False)
        evaluation = evaluate_model(
            loaded.model,
            loaded.tokenizer,
            benchmark,
            task=TASK,
            metrics=METRICS,
            labels=labels,
            batch_size=settings.eval_batch_size,
            max_len=settings.max_seq_length,
            device=loaded.device,
        )
        achieved = counts["flops_per_token"] * trained.tokens_per_second
        return {
            "status": "ok",
            "model": model_ref,
            "method": loaded.method,
            "kind": loaded.kind,
            "device": loaded.device,
            "bf16": loaded.bf16,
            "batch_size": settings.batch_size,
            "max_seq_length": settings.max_seq_length,
            "learning_rate": settings.learning_rate,
            "train_rows": len(rows),
            "steps": trained.steps,
            "train_seconds": trained.seconds,
            "train_tokens": trained.train_tokens,
            "tokens_per_second": trained.tokens_per_second,
            "train_loss": trained.train_loss,
            "load_seconds": round(load_seconds, 3),
            "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None,
            "peak_gpu_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 3) if cuda else None,
            **counts,
            "achieved_tflops": round(achieved / 1e12, 4),
            "mfu": achieved / (peak * 1e12) if peak else None,
            "eval_rows": evaluation.n,
            "eval_seconds": evaluation.seconds,
            "eval": {k: round(v, 4) for k, v in evaluation.metrics.items()},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
        del loaded
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()


def run_or_report(name: str, *args, **kwargs) -> dict:
    """run_config's figures, or {"status": "failed", "error": ...}: one failed configuration is a finding."""
    try:
        return run_config(name, *args, **kwargs)
    except Exception as err:
        traceback.print_exc()
        return {"status": "failed", "error": f"{type(err).__name__}: {err}".strip()[:2000]}


def _mfu(result: dict) -> str:
    mfu = result.get("mfu")
    return "n/a" if mfu is None else f"{100 * mfu:.3g} %"


def markdown(doc: dict) -> str:
    """The table for docs/BENCHMARKS.md, with a line saying where, when and how it was measured."""
    gpu, v, p = doc["gpu"], doc["versions"], doc["params"]
    peak = (
        f"peak {gpu['peak_bf16_tflops']:g} TFLOP/s, {gpu['peak_source']}"
        if gpu["peak_bf16_tflops"]
        else f"MFU n/a: {gpu['peak_source']}"
    )
    lines = [
        f"GPU check on {gpu['name']} ({peak}); torch {v['torch']}, CUDA {v['cuda']}, transformers "
        f"{v['transformers']}, peft {v['peft']}, bitsandbytes {v['bitsandbytes']}; {doc['date']}; `{doc['command']}`. "
        f"{p['train_rows']} demo rows (D0 + helpful), batch {p['batch_size']}, max_seq_length {p['max_seq_length']}, "
        f"{p['steps']} steps; evaluated on the {p['eval_rows']}-row demo benchmark.",
        "",
        "| config | model | method | bf16 | steps | train s | tokens/s | peak GPU mem | MFU | accuracy | macro-F1 "
        "| eval s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in doc["configs"].items():
        model, method = CONFIGS[name][0], CONFIGS[name][1]["method"]
        if r["status"] != "ok":
            error = r["error"].replace("|", "/").splitlines()[0][:160]
            lines.append(f"| {name} | `{model}` | {method} | failed: {error} |" + " |" * 8)
            continue
        lines.append(
            f"| {name} | `{model}` | {r['method']} | {'on' if r['bf16'] else 'off'} | {r['steps']} "
            f"| {r['train_seconds']:.1f} | {r['tokens_per_second']:,.0f} | {r['peak_gpu_mem_gib']:.2f} GiB "
            f"| {_mfu(r)} | {r['eval']['accuracy']:.3f} | {r['eval']['macro_f1']:.3f} | {r['eval_seconds']:.1f} |"
        )
    lines += ["", f"MFU: {doc['flops_formula']}"]
    return "\n".join(lines)


FLOPS_FORMULA = (
    "model FLOPs/token = 2N (forward) + 2N (backward to activations) + 2N_trainable (backward to weights), "
    "N = matmul weights (nn.Linear, LoRA and 4-bit layers included, embeddings excluded): 6N for full "
    "fine-tuning, about 4N for LoRA/QLoRA; attention score products and activation recomputation not "
    "counted; tokens = non-pad training tokens; divided by the GPU's peak dense bf16 FLOP/s"
)


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps per configuration (not {STEPS})")
    parser.add_argument(
        "--only", action="append", choices=list(CONFIGS), help="run only this configuration (repeatable)"
    )
    parser.add_argument("--steps", type=int, help="optimizer steps per configuration (overrides --quick)")
    parser.add_argument(
        "--peak-tflops", type=float, help="the GPU's peak dense bf16 TFLOP/s, for a GPU not in the table"
    )
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps <= 0:
        parser.error("--steps must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    # One GPU, as a worker has (docs/OPERATIONS.md: one worker per GPU); with several visible, the
    # Trainer would spread each step over them (DataParallel) and the figures would mean something else.
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")
    refusal = _cuda_refusal()
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    import torch

    _quiet()
    names = [n for n in CONFIGS if not args.only or n in args.only]
    steps = args.steps or (QUICK_STEPS if args.quick else STEPS)
    device_name = torch.cuda.get_device_name(0)
    peak, peak_source = (args.peak_tflops, "--peak-tflops") if args.peak_tflops else peak_tflops(device_name)
    props = torch.cuda.get_device_properties(0)
    print(f"GPU: {device_name} ({props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor})")
    print(f"peak bf16: {f'{peak:g} TFLOP/s ({peak_source})' if peak else f'n/a: {peak_source}; MFU is n/a'}")
    print(f"MFU: {FLOPS_FORMULA}\n", flush=True)

    train_rows, benchmark, labels = demo_rows()
    configs = {name: _run_and_print(name, train_rows, benchmark, labels, steps, peak) for name in names}
    doc = {
        "command": " ".join(["python -m bench.gpu_check", *argv]),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "gpu": {
            "name": device_name,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "peak_bf16_tflops": peak,
            "peak_source": peak_source,
        },
        "versions": _versions(),
        "params": {
            "steps": steps,
            "batch_size": BATCH,
            "max_seq_length": MAX_LEN,
            "eval_batch_size": EVAL_BATCH,
            "train_rows": len(train_rows),
            "eval_rows": len(benchmark),
            "labels": labels,
            "configs": names,
        },
        "flops_formula": FLOPS_FORMULA,
        "configs": configs,
    }
    doc["markdown"] = markdown(doc)
    return _report(doc)


def _cuda_refusal() -> str | None:
    """Why this machine cannot run the check (no CUDA, or more than one GPU visible); None when it can.

    Asked before anything is built or loaded: importing torch is the only cost.
    """
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        return NO_CUDA
    if not cuda:
        return NO_CUDA
    if torch.cuda.device_count() > 1:
        return (
            f"bench.gpu_check measures one GPU and sees {torch.cuda.device_count()} "
            f"(CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}): give it one, e.g. CUDA_VISIBLE_DEVICES=0"
        )
    return None


def _quiet() -> None:
    setup_env()
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def _run_and_print(name: str, train_rows, benchmark, labels, steps: int, peak) -> dict:
    """One configuration, run (or its failure recorded) and printed."""
    import torch

    print(f"=== {name}: {CONFIGS[name][0]} ({CONFIGS[name][1]['method']}), {steps} steps", flush=True)
    r = run_or_report(name, train_rows, benchmark, labels, steps=steps, peak=peak)
    gc.collect()  # a failure's traceback held its model until run_or_report returned
    torch.cuda.empty_cache()
    if r["status"] != "ok":
        print(f"{name}: FAILED: {r['error'].splitlines()[0][:300]}\n", flush=True)
        return r
    print(
        f"{name}: {r['tokens_per_second']:,.0f} train tokens/s, {r['steps']} steps in {r['train_seconds']:.1f} s, "
        f"peak GPU memory {r['peak_gpu_mem_gib']:.2f} GiB, MFU {_mfu(r)} "
        f"({r['achieved_tflops']:.3g} TFLOP/s); accuracy {r['eval']['accuracy']:.3f}, "
        f"macro-F1 {r['eval']['macro_f1']:.3f}, eval {r['eval_seconds']:.1f} s\n",
        flush=True,
    )
    return r


def _versions() -> dict:
    import torch

    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        **{pkg: _version(pkg) for pkg in ("transformers", "peft", "trl", "accelerate", "bitsandbytes")},
    }


def _report(doc: dict) -> int:
    """The table on stdout, the result file (printed instead when it cannot be written); 1 if a config failed."""
    configs = doc["configs"]
    rows = [
        [n, r.get("method", CONFIGS[n][1]["method"]), r["status"]]
        + (
            [r["steps"], r["train_seconds"], r["tokens_per_second"], r["peak_gpu_mem_gib"], _mfu(r)]
            + [r["eval"]["accuracy"], r["eval"]["macro_f1"], r["eval_seconds"]]
            if r["status"] == "ok"
            else [""] * 8
        )
        for n, r in configs.items()
    ]
    header = ["config", "method", "status", "steps", "train s", "tokens/s", "peak GiB", "MFU", "acc", "macro-F1"]
    print_table(rows, header + ["eval s"])
    print("\nFor docs/BENCHMARKS.md (by hand; docs/OPERATIONS.md, 'GPU check'):\n")
    print(doc["markdown"], flush=True)
    try:
        write_result("gpu_check", doc, command=doc["command"])
    except OSError as err:  # e.g. the image's read-only checkout: the figures must not be lost with it
        print(f"\ncannot write {RESULTS_DIR / 'gpu_check.json'} ({err}); its content:\n", file=sys.stderr)
        print(json.dumps(doc, indent=2))
    failed = [n for n, r in configs.items() if r["status"] != "ok"]
    if failed:
        print(f"\nfailed: {', '.join(failed)} (errors above and in the result file)", file=sys.stderr)
    return 1 if failed else 0


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
