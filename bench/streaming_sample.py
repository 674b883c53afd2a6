"""A 10k-row sample of a 1M-row Hub-style folder: streaming vs loading it whole.

Writes (once, reused) a folder laid out like a Hub dataset repo: data/train-0000X-of-00010.jsonl
shards with 1,000,000 {text, label} rows in all and a README.md whose front matter declares the
config. Then, each in its own fresh subprocess (so peak RSS belongs to one variant) and with its
own empty datasets cache (so the full load is not served from an Arrow cache written earlier):
- stream: load_source(SourceSpec(path=folder, max_rows=10000), streaming=True): a seeded
  shuffle buffer over the shards, take 10k;
- full:   load_source(SourceSpec(path=folder, max_rows=10000), streaming=False): datasets reads
  every shard into an Arrow cache, then a seeded random sample of 10k rows.
The child reports the seconds of the load_source call, its RSS before the call (after imports) and
its peak RSS (VmHWM); the parent reports each subprocess's wall time too. Torch is imported before
the baseline (a `datasets` stream imports it on first use; a worker has it loaded anyway). Three
alternating rounds; medians reported. On a local disk this measures CPU and memory only: the point
of streaming a Hub dataset, not downloading every shard, is not measured here (no network).

Run: python -m bench.streaming_sample
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench._common import print_table, python, scratch_dir, setup_env, versions, write_result

N_ROWS = 1_000_000
N_SHARDS = 10
SAMPLE = 10_000
VARIANTS = ("stream", "full")
REPEATS = 3  # alternating stream/full subprocesses; medians reported (a shared machine)

README = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.jsonl
---
# synthetic-1m

Synthetic support-ticket rows for the streaming benchmark (bench/streaming_sample.py).
"""


def write_folder(folder: Path) -> Path:
    """The Hub-style folder, written once (a COMPLETE stamp marks a finished one)."""
    stamp = folder / "COMPLETE"
    if stamp.is_file():
        return folder
    from core import demo

    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    base = demo.generate("helpful", 50_000, seed=1)
    per = N_ROWS // N_SHARDS
    for s in range(N_SHARDS):
        with open(folder / "data" / f"train-{s:05d}-of-{N_SHARDS:05d}.jsonl", "w", encoding="utf-8") as fh:
            for i in range(s * per, (s + 1) * per):
                r = base[i % len(base)]
                fh.write(json.dumps({"text": f"{r['text']} ref {i}", "label": r["label"]}) + "\n")
    (folder / "README.md").write_text(README)
    stamp.write_text("ok\n")
    return folder


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(variant: str, folder: str, cache: str) -> None:
    """One variant in this process; prints one JSON line."""
    import resource

    # Imported before the baseline RSS is taken, as in a worker process (which trains with torch):
    # a datasets stream imports torch on first use, which would otherwise count as ~200 MiB of "data".
    import datasets  # noqa: F401
    import torch  # noqa: F401

    from core.sources import load_source
    from core.spec import SourceSpec

    rss_before = _rss_kib("VmRSS")
    start = time.perf_counter()
    loaded = load_source(
        SourceSpec(path=folder, max_rows=SAMPLE), seed=0, streaming=variant == "stream", cache_dir=cache
    )
    seconds = time.perf_counter() - start
    cache_bytes = sum(p.stat().st_size for p in Path(cache).rglob("*") if p.is_file())
    print(
        json.dumps(
            {
                "variant": variant,
                "rows": len(loaded.rows),
                "streamed": loaded.streamed,
                "origin": loaded.origin,
                "load_seconds": round(seconds, 3),
                "rss_after_imports_mib": round(rss_before / 1024, 1),
                "peak_rss_mib": round(_rss_kib("VmHWM") / 1024, 1),
                "peak_rss_getrusage_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "cache_mib": round(cache_bytes / 1024**2, 1),
                "first_row": loaded.rows[0],
            }
        )
    )


def run_variant(variant: str, folder: Path, scratch: Path) -> dict:
    cache = scratch / f"cache-{variant}"
    shutil.rmtree(cache, ignore_errors=True)  # an empty cache: nothing served from an earlier run
    cache.mkdir(parents=True)
    env = dict(os.environ, HF_DATASETS_CACHE=str(cache), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    start = time.perf_counter()
    proc = subprocess.run(
        [python(), "-m", "bench.streaming_sample", "--child", variant, str(folder), str(cache)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"variant {variant} failed (exit {proc.returncode})")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_wall_seconds"] = round(wall, 3)
    out["peak_rss_over_imports_mib"] = round(out["peak_rss_mib"] - out["rss_after_imports_mib"], 1)
    shutil.rmtree(cache, ignore_errors=True)
    return out


def _median_run(rs: list[dict]) -> dict:
    """Median of each number over the repeats; the other fields from the first run."""
    out = dict(rs[0])
    for k, v in rs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            vals = sorted(r[k] for r in rs)
            out[k] = vals[len(vals) // 2]
    out["load_seconds_all"] = [r["load_seconds"] for r in rs]
    out["peak_rss_mib_all"] = [r["peak_rss_mib"] for r in rs]
    return out


def main() -> dict:
    setup_env()
    scratch = scratch_dir("streaming_sample")
    t0 = time.perf_counter()
    folder = write_folder(scratch / "synthetic-1m")
    write_seconds = time.perf_counter() - t0
    size_mib = sum(p.stat().st_size for p in (folder / "data").iterdir()) / 1024**2
    print(f"source: {folder} ({N_ROWS:,} rows, {N_SHARDS} shards, {size_mib:.0f} MiB; ready in {write_seconds:.1f}s)")
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for _ in range(REPEATS):
        for v in VARIANTS:
            runs[v].append(run_variant(v, folder, scratch))
    results = {v: _median_run(rs) for v, rs in runs.items()}
    s, f = results["stream"], results["full"]
    ratios = {
        "load_time_full_over_stream": round(f["load_seconds"] / s["load_seconds"], 2),
        "process_time_full_over_stream": round(f["process_wall_seconds"] / s["process_wall_seconds"], 2),
        "peak_rss_full_over_stream": round(f["peak_rss_mib"] / s["peak_rss_mib"], 2),
        "peak_rss_over_imports_full_over_stream": round(
            f["peak_rss_over_imports_mib"] / max(s["peak_rss_over_imports_mib"], 0.1), 2
        ),
    }
    print_table(
        [
            [
                v,
                r["rows"],
                r["load_seconds"],
                r["process_wall_seconds"],
                r["rss_after_imports_mib"],
                r["peak_rss_mib"],
                r["peak_rss_over_imports_mib"],
                r["cache_mib"],
            ]
            for v, r in results.items()
        ],
        [
            "variant",
            "rows",
            "load s",
            "process s",
            "RSS after imports MiB",
            "peak RSS MiB",
            "peak - imports MiB",
            "cache MiB",
        ],
    )
    print()
    for k, v in ratios.items():
        print(f"{k}: {v}x")
    result = {
        "what": f"sample {SAMPLE:,} rows of a {N_ROWS:,}-row Hub-style jsonl folder: streaming vs full load",
        "params": {
            "rows": N_ROWS,
            "shards": N_SHARDS,
            "sample": SAMPLE,
            "source_mib": round(size_mib, 1),
            "repeats": REPEATS,
            "statistic": "median over repeats (alternating stream/full subprocesses)",
            "baseline": "RSS after importing datasets and torch (a worker has both loaded)",
        },
        "variants": results,
        "ratios": ratios,
        "versions": versions("datasets", "pyarrow"),
    }
    write_result("streaming_sample", result)
    return result


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
