"""docs/BENCHMARKS.md as bench.run_all renders it from the committed bench/results/*.json and bench/templates/."""

from __future__ import annotations

import json

from bench._common import RESULTS_DIR
from bench.run_all import BENCHMARKS, write_doc

# Each benchmark's section heading, and a figure from its result file written as its section's prose writes it.
SECTIONS = {
    "normalize_mix": (
        "## 1. Normalize, decontaminate and mix 1M classification rows",
        lambda r: f"**{r['steps']['end_to_end']['rows_per_s']:,.0f} rows/s**",
    ),
    "streaming_sample": (
        "## 2. A 10k-row sample of a 1M-row Hub-style folder: streaming vs full load",
        lambda r: f"stream {r['variants']['stream']['load_seconds_all']}",
    ),
    "label_scoring": (
        "## 3. Classification scoring: batched label log-likelihood vs per-row generate",
        lambda r: f"**{r['ratio_batched_over_generate']:.2f}x**",
    ),
    "train_throughput": (
        "## 4. Training throughput: our settings vs TRL's defaults",
        lambda r: f"**{r['ratio_ours_over_trl_defaults']:.2f}x** tokens/s",
    ),
    "queue": (
        "## 5. The job system: queue latency, throughput, status reads, overhead on a run",
        lambda r: f"{r['status_read']['run_record_bytes_in_redis']} bytes each in Redis",
    ),
    "dashboard": (
        "## 6. Dashboard: Jobs and Results with 10k runs, and Run to the first run starting",
        lambda r: f"metrics.json ({r['params']['results_metrics_json_mib']:.1f} MiB)",
    ),
    "near_duplicates": (
        "## 7. Near-duplicate search and the semantic decontamination threshold",
        lambda r: f"**Recommended default: {r['recommended_threshold']}.**",
    ),
    "resubmit": (
        "## 8. Re-submitting a finished study: cold, warm, and from the Setup page",
        lambda r: f"**{r['warm_median_s']:.2f} s**",
    ),
    "math_grading": (
        "## 9. Math answers graded by equivalence (math_equiv): answers per second and the time limit",
        lambda r: f"**{r['typical_answers_per_second']:,.0f} answers/s**",
    ),
}


def test_document_fills_every_section_from_its_result(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    assert write_doc(path=out) == out
    text = out.read_text()

    assert set(SECTIONS) == set(BENCHMARKS)
    for name, (heading, figure) in SECTIONS.items():
        result = json.loads((RESULTS_DIR / f"{name}.json").read_text())
        assert f"\n{heading}\n" in text, name
        section = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
        assert figure(result) in section, name
        assert f"| {name} | `{result['command']}` |" in text, name  # its row in the summary table
    for placeholder in ("{{", "{%", "{#"):
        assert placeholder not in text
