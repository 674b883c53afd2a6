"""Run every benchmark, each in its own process, then rewrite docs/BENCHMARKS.md from the results.

Run: python -m bench.run_all                (all benchmarks, then the document)
     python -m bench.run_all --docs-only    (the document from bench/results/*.json as they are)
     python -m bench.run_all normalize_mix  (some benchmarks, then the document)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jinja2

from bench._common import RESULTS_DIR, machine, python, setup_env

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
TEMPLATES = Path(__file__).resolve().parent / "templates"
BENCHMARKS = (
    "normalize_mix",
    "streaming_sample",
    "label_scoring",
    "train_throughput",
    "queue",
    "dashboard",
    "near_duplicates",
    "resubmit",
    "math_grading",
)


def run(names: list[str]) -> dict[str, float]:
    setup_env()
    took = {}
    for name in names:
        print(f"\n=== python -m bench.{name}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run([python(), "-m", f"bench.{name}"], cwd=ROOT, env=dict(os.environ))
        took[name] = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"bench.{name} failed (exit {proc.returncode})")
        print(f"=== {name}: {took[name]:.0f}s", flush=True)
    return took


# ------------------------------------------------------------------------------------------------
# The document. Its prose lives in bench/templates/: document.md around one template per benchmark
# section; the functions below compute the numbers and tables those templates fill in.


def _n(v, digits: int = 0) -> str:
    return f"{v:,.{digits}f}"


def _x(v) -> str:
    return f"{v:.2f}x" if v < 10 else f"{v:.1f}x"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _rounded_pct(share: float) -> float:
    # Rounded before it is formatted so that a share a hair below zero prints 0.0, not -0.0.
    return round(100 * share, 1) or 0.0


def _worker_cpu_ms(x: dict) -> float:
    """CPU ms per job of the worker processes with their work horses, redis-server left out."""
    return sum(v for k, v in x["cpu_ms_per_job"].items() if k.startswith("worker"))


def _normalize_mix_values(r: dict) -> dict:
    s, e = r["steps"], r["extras"]
    manifest = e["mixture manifest to JSON"]
    rows = [[k.replace("_", " "), _n(v["rows"]), f"{v['seconds']:.2f}", _n(v["rows_per_s"])] for k, v in s.items()]
    rows += [[f"({k})", "", f"{v['seconds']:.2f}", _n(v["rows_per_s"])] for k, v in e.items()]
    return {
        "s": s,
        "manifest": manifest,
        "manifest_mib": manifest["bytes"] / 1024**2,
        "table": _table(["step", "rows", "seconds", "rows/s"], rows),
        "goal_multiple": s["end_to_end"]["rows_per_s"] / r["goal_rows_per_s"],
        "fingerprint_pct": 100 * e["fingerprint_rows (inside normalize)"]["seconds"] / s["normalize"]["seconds"],
    }


def _streaming_sample_values(r: dict) -> dict:
    v, ratios = r["variants"], r["ratios"]
    header = [
        "variant",
        "load_source s",
        "process s",
        "RSS after imports MiB",
        "peak RSS MiB",
        "peak over imports MiB",
        "Arrow cache written MiB",
    ]
    rows = [
        [
            k,
            f"{x['load_seconds']:.2f}",
            f"{x['process_wall_seconds']:.2f}",
            _n(x["rss_after_imports_mib"]),
            _n(x["peak_rss_mib"]),
            _n(x["peak_rss_over_imports_mib"]),
            _n(x["cache_mib"]),
        ]
        for k, x in v.items()
    ]
    return {
        "v": v,
        "ratios": ratios,
        "p": r["params"],
        "table": _table(header, rows),
        # Less than 10 % apart in both time and memory: no win for streaming on this run.
        "streaming_no_better": ratios["load_time_full_over_stream"] < 1.1 and ratios["peak_rss_full_over_stream"] < 1.1,
    }


def _label_scoring_values(r: dict) -> dict:
    rate, sec, p, e = r["rows_per_s"], r["seconds"], r["params"], r["encoder"]
    gen = rate["generate"]
    rows = [[r["methods"][k], _n(rate[k]), _x(rate[k] / gen), ", ".join(f"{t:.3f}" for t in sec[k])] for k in rate]
    enc = [
        [e["methods"][k], _n(e["rows_per_s"][k]), ", ".join(f"{t:.3f}" for t in e["seconds"][k])]
        for k in e["rows_per_s"]
    ]
    tokens = r["label_tokens"]
    return {
        "p": p,
        "e": e,
        "probe": r["default_threads_probe"],
        "labels": len(r["labels"]),
        "label_tokens": ", ".join(f"{k} {v} token{'s' if v > 1 else ''}" for k, v in tokens.items()),
        "head_positions": 1 + sum(tokens.values()),
        "longest": max(tokens.values()),
        "table": _table(["method", "rows/s", "x per-row generate", "timings s"], rows),
        "encoder_table": _table(["method", "rows/s", "timings s"], enc),
        "generate_ms_per_row": 1000 / gen,
    }


def _train_throughput_values(r: dict) -> dict:
    v = r["variants"]
    base = v["trl_defaults"]["best"]["tokens_per_s"]
    rows = [
        [
            x["label"],
            _n(x["best"]["tokens"]),
            f"{x['best']['seconds']:.2f}",
            _n(x["best"]["tokens_per_s"]),
            _x(x["best"]["tokens_per_s"] / base),
            ", ".join(f"{t:.2f}" for t in x["all_seconds"]),
            ", ".join(f"{t:.3f}" for t in x.get("eval_losses", [])),
        ]
        for x in v.values()
    ]
    bf16_over_trl = v["ours_bf16"]["best"]["tokens_per_s"] / base
    return {
        "p": r["params"],
        "ours": r["params"]["ours_settings"],
        "ours_cfg": v["ours"]["best"].get("config") or {},
        "trl_cfg": v["trl_defaults"]["best"]["config"],
        "tp": r["threads_probe"],
        "table": _table(
            ["variant", "tokens", "best s", "tokens/s", "x TRL defaults", "timings s", "eval loss after"], rows
        ),
        "v": v,
        "bf16_alone": 1 / r["ratio_whatif_over_ours"]["ours_bf16"],
        "bf16_over_trl": bf16_over_trl,
        "bf16_within_noise": abs(bf16_over_trl - 1) < 0.1,
    }


def _queue_tables(r: dict) -> dict:
    lat, tp, st, rs = r["latency"], r["throughput"], r["status_read"], r["resubmit"]
    workers = (("workbench", "workbench_worker"), ("plain RQ (ref)", "plain_rq_worker"))
    latency = [
        [name, which.replace("_", " "), f"{x['p50_ms']:.1f}", f"{x['p95_ms']:.1f}", f"{x['max_ms']:.1f}"]
        for name, key in workers
        for which, x in lat[key].items()
        if which != "jobs"
    ]
    throughput = [
        [
            name,
            n,
            _n(x["jobs"]),
            f"{x['seconds']:.2f}",
            _n(x["jobs_per_s"], 1),
            f"{_worker_cpu_ms(x):.1f}",
            f"{x['cpu_ms_per_job'].get('redis-server', 0):.2f}",
            f"{x.get('worker_cores_used', 0):.2f}",
            f"{100 * x['machine_busy_share']:.0f} %",
        ]
        for name, key in workers
        for n in ("1", "2")
        for x in (tp[key][n],)
    ]
    demo = [
        [
            x["seed"],
            f"{x['queue']['seconds']:.2f}",
            f"{x['queue']['execute_run_total_seconds']:.2f}",
            f"{x['inprocess']['seconds']:.2f}",
            f"{100 * x['overhead_share']:.1f} %",
            f"{100 * x['outside_execute_run_share']:.1f} %",
            f"{_n(x['queue'].get('redis_commands', 0))} ({x['queue'].get('redis_server_ms', 0):.0f})",
        ]
        for x in r["demo_run"]["rounds"]
    ]
    resubmit = [
        [
            k.replace("_", " "),
            x["runs"],
            x["runs_trained"],
            x["jobs_run"],
            f"{x['submit_seconds']:.2f}",
            f"{x['first_job_started_after_s']:.2f}",
            f"{x['seconds']:.2f}",
            ", ".join(f"{t} {v:.1f}" for t, v in x["job_seconds_by_task"].items()),
        ]
        for k, x in rs.items()
        if isinstance(x, dict)
    ]
    return {
        "latency_table": _table(["worker", "interval", "p50 ms", "p95 ms", "max ms"], latency),
        "throughput_table": _table(
            [
                "worker",
                "workers",
                "jobs",
                "seconds",
                "jobs/s",
                "CPU ms/job (workers + horses)",
                "CPU ms/job redis",
                "cores the workers got",
                "machine busy",
            ],
            throughput,
        ),
        "status_table": _table(
            ["read", "reads", "p50 ms"], [[v["label"], v["reads"], _n(v["p50_ms"])] for v in st["variants"].values()]
        ),
        "demo_table": _table(
            [
                "seed",
                "queue wall s",
                "execute_run inside the job s",
                "in-process s",
                "overhead",
                "queue wall outside execute_run",
                "Redis commands (server ms)",
            ],
            demo,
        ),
        "resubmit_table": _table(
            [
                "case",
                "runs",
                "runs trained",
                "jobs run",
                "submit s",
                "first job started s",
                "submit to ranking s",
                "job seconds by task",
            ],
            resubmit,
        ),
    }


def _queue_values(r: dict) -> dict:
    tp, st, demo, rs = r["throughput"], r["status_read"], r["demo_run"], r["resubmit"]
    wb = tp["workbench_worker"]
    wb_cpu, wb_cpu_2 = _worker_cpu_ms(wb["1"]), _worker_cpu_ms(wb["2"])
    study_runs_ms, evalsha_round_trip_ms = (st["variants"][k]["p50_ms"] for k in ("study_runs", "study_runs_raw"))
    reply = st.get("script_reply_bytes")
    rounds = demo["rounds"]
    commands = statistics.median(x["queue"].get("redis_commands", 0) for x in rounds)
    queue_wall = statistics.median(x["queue"]["seconds"] for x in rounds)
    ms_per_command = st["variants"]["unpipelined"]["p50_ms"] / st["runs"]  # one HGETALL round trip, parsed and decoded
    return {
        **_queue_tables(r),
        "p": r["params"],
        "rss": r["worker_rss_mib"],
        "fork": r["fork_probe"],
        "st": st,
        "demo": demo,
        "rs": rs,
        "first": rs["first_submit"],
        "burst": rs["resubmit_burst_worker"],
        "idle": rs["resubmit_idle_worker"],
        "wb": wb,
        "plain": tp["plain_rq_worker"],
        "wb_start_ms": r["latency"]["workbench_worker"]["enqueue_to_rq_started_at"]["p50_ms"],
        "plain_start_ms": r["latency"]["plain_rq_worker"]["enqueue_to_rq_started_at"]["p50_ms"],
        "wb_cpu": wb_cpu,
        "wb_cpu_2": wb_cpu_2,
        "plain_cpu": _worker_cpu_ms(tp["plain_rq_worker"]["1"]),
        "same_cpu_per_job": abs(wb_cpu_2 - wb_cpu) / wb_cpu < 0.15,
        "one_core_jobs_per_s": 1000 / wb_cpu,
        "two_core_jobs_per_s": 2000 / wb_cpu,
        "busy_pct_1": 100 * wb["1"]["machine_busy_share"],
        "busy_pct_2": 100 * wb["2"]["machine_busy_share"],
        "hiredis": st["redis_py_parser"] == "hiredis",
        "evalsha_ms": st["server_side"]["evalsha_per_call_ms"],
        "study_runs_ms": study_runs_ms,
        "evalsha_round_trip_ms": evalsha_round_trip_ms,
        "decode_ms": st.get("decode_ms_paired_median", study_runs_ms - evalsha_round_trip_ms),
        "reply_mib": reply / 1024**2 if reply else None,
        "pipelined_within_noise": 0.9 <= st["ratio_pipelined_over_study_runs"] <= 1.1,
        "hgetall_server_ms": st["server_side"]["hgetall_per_call_us"] * st["runs"] / 1000,
        "overhead_pct": _rounded_pct(demo["overhead_share_median"]),
        "outside_pct": 100 * demo["outside_execute_run_share_median"],
        "round_overhead_pcts": [100 * x["overhead_share"] for x in rounds],
        "same_metrics_all_rounds": all(x.get("same_metrics") for x in rounds),
        "ping_ms": demo.get("redis_ping_p50_ms"),
        "commands": commands,
        "ms_per_command": ms_per_command,
        "commands_s": commands * ms_per_command / 1000,
        "commands_pct": 100 * commands * ms_per_command / 1000 / queue_wall,
    }


def _dashboard_values(r: dict) -> dict:
    p, rd, rs = r["params"], r["render"], r["run_to_start"]
    pages = [
        [
            k.capitalize(),
            _n(v["first_ms"]),
            _n(v["steady_median_ms"]),
            _n(v["steady_min_ms"]),
            _n(v["steady_max_ms"]),
            "met" if v["goal_met_steady"] else "NOT met",
        ]
        for k, v in rd.items()
    ]
    rounds = [
        [n, _n(x["submit_ms"]), _n(x["after_submit_ms"]), _n(x["run_to_first_running_ms"])]
        for n, x in enumerate(rs["rounds"])
    ]
    rounds.append(
        [
            "**median**",
            _n(rs["submit_ms_median"]),
            _n(rs["after_submit_ms_median"]),
            f"**{_n(rs['run_to_first_running_ms_median'])}**",
        ]
    )
    reads = r.get("status_reads") or {}
    reads_rows = [
        [what, reads[k]["p50_ms"], reads[k]["p95_ms"]]
        for k, what in (("page", "`study_runs_page`: counts + one page"), ("all", "`study_runs`: every record"))
        if k in reads
    ]
    return {
        "p": p,
        "rd": rd,
        "rs": rs,
        "w": r.get("under_writes"),
        "page_size": 200,
        "reads_table": _table(["read (10k runs)", "p50 ms", "p95 ms"], reads_rows),
        "render_table": _table(
            ["page (10k runs)", "first run ms", "steady p50 ms", "min ms", "max ms", f"steady <= {p['goal_ms']} ms"],
            pages,
        ),
        "rounds_table": _table(["round", "submit ms", "then to running ms", "Run -> first running ms"], rounds),
        "outputs_error": r.get("write_study_outputs_10k_error"),
    }


def _pct(share: float, digits: int = 1) -> str:
    return f"{round(100 * share, digits) or 0.0:.{digits}f} %"


def _threshold_tables(a: dict, at: dict) -> dict:
    """Recall per positive set and false removals per negative set at each threshold (`at` in bold)."""
    sets, table = a["sets"], a["table"]
    pos = [k for k, v in sets.items() if v["kind"] == "positive"]
    neg = [k for k, v in sets.items() if v["kind"] == "negative"]
    mark = lambda row, cells: [f"**{c}**" if row is at else c for c in cells]  # noqa: E731
    recall = [mark(row, [f"{row['threshold']:.2f}", *(_pct(row[n]["rate"]) for n in pos)]) for row in table]
    false = [
        mark(row, [f"{row['threshold']:.2f}", *(f"{row[n]['count']} ({_pct(row[n]['rate'], 2)})" for n in neg)])
        for row in table
    ]
    quantiles = [
        [
            k,
            v["kind"],
            _n(v["rows"]),
            *(f"{x:.3f}" for x in v["quantiles"].values()),
            _pct(v.get("nearest_is_source", 0), 0) if v["kind"] == "positive" else "",
        ]
        for k, v in sets.items()
    ]
    slots = a["shared_slots"]["topics: benchmark phrasing"]
    return {
        "recall_table": _table(["threshold", *pos], recall),
        "false_table": _table(["threshold", *neg], false),
        "quantile_table": _table(
            ["set", "kind", "rows", *(f"q{q}" for q in sets[pos[0]]["quantiles"]), "nearest is its source"], quantiles
        ),
        "slots_table": _table(
            ["slots shared", *next(iter(slots.values()))], [[k, *(_n(x) for x in v.values())] for k, v in slots.items()]
        ),
        "neg_sets": neg,
    }


def _resubmit_values(r: dict) -> dict:
    cases = {
        "cold: nothing cached, idle worker": [r["cold"]],
        "warm: runs and ranking cached, idle worker": r["warm"],
        "warm, fits and ranking recomputed (their cache emptied), idle worker": [r["recomputed"]],
        "warm: runs and ranking cached, no worker": r["no_worker"],
    }
    med = lambda rows, k: statistics.median(x[k] for x in rows)  # noqa: E731
    rows = [
        [name, len(v), f"{med(v, 'submit_s'):.2f}", f"{med(v, 'submit_to_ranking_s'):.2f}", v[0]["jobs"]]
        for name, v in cases.items()
    ]
    page = [
        [n, _n(x["validate_ms"]), _n(x["run_ms"]), x["status_after_run"], x["jobs"]]
        for n, x in enumerate(r["setup_page"])
    ]
    page.append(["**median**", _n(r["setup_validate_ms_median"]), _n(r["setup_run_ms_median"]), "", ""])
    return {
        "p": r["params"],
        "cases_table": _table(["case", "rounds", "submit s", "submit to ranking s (median)", "jobs"], rows),
        "page_table": _table(
            ["round", "Validate & preview ms", "Run ms", "study status after Run", "jobs enqueued"], page
        ),
    }


def _near_duplicates_values(r: dict) -> dict:
    a, search, embed = r["threshold"], r["search"], r["embed"]
    rec = r["recommended_threshold"]
    at = next((row for row in a["table"] if row["threshold"] == rec), a["table"][-1])
    tables = _threshold_tables(a, at)
    timings = lambda x: ", ".join(f"{t:.2f}" for t in x["all"])  # noqa: E731

    def run(block: int, threads: int) -> dict:
        return next(x for x in search["runs"] if (x["block"], x["threads"]) == (block, threads))

    search_rows = [
        [x["threads"], _n(x["block"]), f"{x['seconds']:.2f}", _n(x["rows_per_s"]), _n(x["peak_mib"]), timings(x)]
        for x in search["runs"]
    ]
    embed_rows = [
        [x["threads"], f"{x['texts']} ({embed['mean_words'][x['texts']]})", _n(x["rows"]), f"{x['seconds']:.2f}"]
        + [_n(x["rows_per_s"]), timings(x)]
        for x in embed["runs"]
    ]
    return {
        **tables,
        "a": a,
        "rec": rec,
        "at": at,
        "max_false": max(at[n]["rate"] for n in tables["neg_sets"]),
        "removed_total": sum(at[n]["count"] for n in tables["neg_sets"]),
        "negatives_total": sum(a["sets"][n]["rows"] for n in tables["neg_sets"]),
        "search": search,
        "search_default": run(search["default_block"], 1),
        "search_small": run(min(r["params"]["blocks"]), 1),
        "search_two_threads": run(search["default_block"], 1)["seconds"] / run(search["default_block"], 2)["seconds"],
        "search_table": _table(
            ["BLAS threads", "block", "best s", "rows/s", "peak RSS over start MiB", "timings s"], search_rows
        ),
        "embed": embed,
        "embed_rate": {f"{x['threads']} {x['texts']}": x["rows_per_s"] for x in embed["runs"]},
        "embed_table": _table(
            ["torch threads", "texts (mean words)", "rows", "best s", "rows/s", "timings s"], embed_rows
        ),
    }


def _math_grading_values(r: dict) -> dict:
    rows = [
        ["start only (1 answer)", "1", f"{r['start_only_seconds']:.2f}", ""],
        [
            "typical",
            _n(r["params"]["typical_pairs"]),
            f"{r['typical_seconds']:.2f}",
            _n(r["typical_answers_per_second"]),
        ],
        [
            "adversarial, 1 s limit",
            _n(r["params"]["adversarial_pairs"]),
            f"{r['adversarial_seconds']:.2f}",
            f"{r['params']['adversarial_pairs'] / r['adversarial_seconds']:.2f}",
        ],
        [
            "exact match on the typical set, for scale",
            _n(r["params"]["typical_pairs"]),
            f"{r['exact_match_seconds']:.2f}",
            _n(r["params"]["typical_pairs"] / r["exact_match_seconds"]),
        ],
    ]
    return {"p": r["params"], "table": _table(["set", "answers", "seconds", "answers/s"], rows)}


SECTION_VALUES = {
    "normalize_mix": _normalize_mix_values,
    "streaming_sample": _streaming_sample_values,
    "label_scoring": _label_scoring_values,
    "train_throughput": _train_throughput_values,
    "queue": _queue_values,
    "dashboard": _dashboard_values,
    "near_duplicates": _near_duplicates_values,
    "resubmit": _resubmit_values,
    "math_grading": _math_grading_values,
}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        # A name the values lack fails the render instead of leaving a gap in the document.
        undefined=jinja2.StrictUndefined,
        # Block tags on lines of their own leave no line behind; an included template brings its own newline.
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(n=_n, x=_x, fmt=format)
    return env


def _render_section(env: jinja2.Environment, name: str, r: dict) -> dict:
    """The section's Markdown, and the `headline` its template sets for the summary table."""
    start, end = r["machine"].get("load_avg_at_start"), r["machine"].get("load_avg_at_end")
    values = {"r": r, "load_start": start[0] if start else "?", "load_end": end[0] if end else "?"}
    module = env.get_template(f"{name}.md").make_module({**values, **SECTION_VALUES[name](r)})
    return {"name": name, "command": r["command"], "headline": module.headline, "body": str(module)}


def render_doc(results: dict[str, dict], took: dict[str, float] | None = None) -> str:
    env = _environment()
    dates = sorted(r["date"] for r in results.values())
    # The machine that ran the benchmarks (the newest result's), not the one that writes the document.
    newest = max(results.values(), key=lambda r: r["date"], default=None)
    text = env.get_template("document.md").render(
        m=newest["machine"] if newest else machine(),
        took=took,
        first_date=dates[0] if dates else "?",
        last_date=dates[-1] if dates else "?",
        sections=[_render_section(env, name, r) for name, r in results.items()],
    )
    return text.rstrip() + "\n"


def write_doc(took: dict[str, float] | None = None, path: Path = DOC) -> Path:
    results = {}
    for name in BENCHMARKS:
        result = RESULTS_DIR / f"{name}.json"
        if result.is_file():
            results[name] = json.loads(result.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_doc(results, took))
    return path


def main(argv: list[str]) -> None:
    took = None
    if "--docs-only" not in argv:
        names = [a for a in argv if not a.startswith("-")] or list(BENCHMARKS)
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
        took = run(names)
    print(f"wrote {write_doc(took).relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
