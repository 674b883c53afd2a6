"""Decision quality: does the study's ranking pick what actual runs at the target size pick?

For each synthetic domain of bench/decision_domains.py, the study runs with today's product code
(core.study.run_study) at small sizes and predicts every arm's primary metric at a target 8x the
largest size; then every arm (the D0-only baseline included) is actually trained at the target and
the two are compared. Measured per domain and overall:
- pairwise decision accuracy over candidate pairs: the fitted prediction, and the plain ranking by the
  value measured at the largest small size (the predictor DataDecide found hard to beat), side by side;
- top-1 right (both predictors);
- add-or-not right: the sign of the predicted gain over the baseline against the actual gain (both);
- median |predicted - actual| of the primary metric (fitted; and the plain value taken as the prediction);
- 90 % interval coverage: the actual value inside the study's interval;
- compute ratio: training tokens of the small study over training tokens of the actual runs at the target.
It also checks that the product removed the benchmark rows planted in the contaminated candidate.

Runs are cached by content key in the artifacts store (WORKBENCH_HOME), so a rerun reuses them.

Run: python -m bench.decisions --fast   (under 15 minutes on 2 cores; prints what it drops)
     python -m bench.decisions          (the full benchmark: hours on 2 cores)
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import statistics
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from bench._common import Timer, print_table, setup_env, write_result
from bench.decision_domains import DOMAINS, KINDS, DomainConfig, ensure_domain, leaked_count

PRIMARY = "macro_f1"  # higher is better: gains and orderings below assume it
BASELINE = "baseline"
TRAINING = {  # catalog/demo_study_fast.yaml's settings, which the built-in tiny model learns with on CPU
    "method": "full",
    "epochs": 1,
    "min_steps": 300,
    "learning_rate": 0.001,
    "batch_size": 8,
    "max_seq_length": 64,
    "eval_batch_size": 256,
}
D0_SHARE = 0.3


@dataclass(frozen=True)
class Variant:
    name: str
    domains: tuple[str, ...]
    kinds: tuple[str, ...]
    seeds: tuple[int, ...]
    sizes: tuple[int, ...]
    bootstrap: int

    @property
    def target(self) -> int:
        return 8 * max(self.sizes)


FULL = Variant("full", tuple(DOMAINS), KINDS, seeds=(0, 1), sizes=(250, 500, 1000), bootstrap=200)
FAST = Variant(
    "fast",
    tuple(DOMAINS),
    ("indomain_large", "indomain_small", "offdomain", "noisy_high"),
    seeds=(0,),
    sizes=(100, 200, 400),
    bootstrap=200,
)


def dropped(fast: Variant, full: Variant) -> list[str]:
    """What the fast variant leaves out of the full one, in words."""
    out = []
    if set(fast.domains) != set(full.domains):
        out.append(f"domains {sorted(set(full.domains) - set(fast.domains))}")
    out.append(f"candidate kinds {[k for k in full.kinds if k not in fast.kinds]}")
    if fast.seeds != full.seeds:
        out.append(f"seeds {list(full.seeds)} -> {list(fast.seeds)}")
    out.append(f"sizes {list(full.sizes)} -> {list(fast.sizes)}, target {full.target} -> {fast.target}")
    return out


def study_spec(cfg: DomainConfig, folder: Path, variant: Variant, *, sizes: list[int], name: str):
    """The StudySpec of one domain: D0, the benchmark and the variant's candidates as local jsonl files."""
    from core.spec import parse_spec

    def source(file: str) -> dict:
        return {"path": str(folder / f"{file}.jsonl"), "name": file}

    return parse_spec(
        {
            "name": name,
            "model": "builtin:tiny-lm",
            "task": "classification",
            "d0": source("d0"),
            "benchmark": source("benchmark"),
            "candidates": [source(kind) for kind in variant.kinds],
            "sizes": sizes,
            "d0_share": D0_SHARE,
            "seeds": list(variant.seeds),
            "target_size": variant.target,
            "metrics": [PRIMARY, "accuracy", "loss"],
            "primary_metric": PRIMARY,
            "training": TRAINING,
            "bootstrap": variant.bootstrap,
        }
    )


def run_actuals(spec, store) -> list[dict]:
    """Every arm trained at the target size (the spec's one size): what the prediction is checked against."""
    from core.study import execute_run, plan_runs, prepare_study

    prepared = prepare_study(spec)
    runs = plan_runs(prepared)
    results = []
    for i, run in enumerate(runs):
        print(f"  actual {i + 1}/{len(runs)}: {run.label}", flush=True)
        results.append(execute_run(prepared, run, store=store, keep_weights=False))
    return results


def decontamination_check(cfg: DomainConfig, folder: Path, variant: Variant) -> dict:
    """Rows the product removes from the contaminated candidate, beside the benchmark rows planted in it.

    Preparing a study is enough (no training), so every variant checks it, even one that trains no contaminated arm.
    """
    from core.study import prepare_study

    spec = study_spec(
        cfg, folder, replace(variant, kinds=("contaminated",)), sizes=list(variant.sizes), name="decontamination"
    )
    return {"removed": prepare_study(spec).contamination["contaminated"], "planted": leaked_count(cfg)}


def run_domain(cfg: DomainConfig, variant: Variant, store, root: Path) -> dict:
    """Study at small sizes, actual runs at the target, and the decision measures of one domain."""
    from core.study import run_study

    folder = ensure_domain(cfg, root)
    small = study_spec(cfg, folder, variant, sizes=list(variant.sizes), name=f"decisions {cfg.name} {variant.name}")
    print(f"\n=== {cfg.name}: study at sizes {list(variant.sizes)}", flush=True)
    with Timer() as t_study:
        summary = run_study(
            small,
            root / "studies" / cfg.name / variant.name,
            store=store,
            on_run=lambda run, i, n: print(f"  study {i + 1}/{n}: {run.label}", flush=True),
        )
    actual_spec = study_spec(cfg, folder, variant, sizes=[variant.target], name=f"decisions {cfg.name} actual")
    print(f"=== {cfg.name}: actual runs at {variant.target}", flush=True)
    with Timer() as t_actual:
        actual = run_actuals(actual_spec, store)
    arms = arm_table(summary, actual)
    refined = refine_once(summary, small, store, root / "studies" / cfg.name / f"{variant.name}-refined", actual)
    return {
        "domain": cfg.name,
        "labels": len(cfg.labels),
        "arms": arms,
        "predictor": (summary.get("predictor") or {}).get("used"),
        "decision": summary.get("decision"),
        "snr": {m: s.get("snr") for m, s in (summary.get("signal_to_noise") or {}).items()},
        "measures": decision_measures(arms),
        "by_predictor": predictor_measures(summary, _actual_by_arm(actual)),
        "compute": compute(summary["runs"], actual),
        "contamination": decontamination_check(cfg, folder, variant),
        "warnings": summary.get("warnings", []),
        "seconds": {"study": round(t_study.seconds, 1), "actual": round(t_actual.seconds, 1)},
        "cached_runs": sum(bool(r.get("cached")) for r in summary["runs"] + actual),
        "refined": refined,
    }


def refine_once(summary: dict, spec, store, out: Path, actual: list[dict]) -> dict | None:
    """Follow the study's proposal once when it says inconclusive (step 8): its runs, then the measures again."""
    from core.study import run_study

    decision = summary.get("decision") or {}
    p = decision.get("proposal")
    if not decision.get("inconclusive") or not p:
        return None
    added = [{"arm": a, "size": p["size"], "seed": s} for a in p["arms"] for s in p["seeds"]]
    print(f"  refining: {len(added)} runs at {p['size']}", flush=True)
    refined = run_study(spec, out, store=store, refinements=added)
    arms = arm_table(refined, actual)
    return {
        "added": added,
        "decision": refined.get("decision"),
        "measures": decision_measures(arms),
        "compute": compute(refined["runs"], actual),
    }


def _actual_by_arm(results: list[dict]) -> dict[str, float]:
    """The primary metric at the target, mean over seeds, per arm."""
    values: dict[str, list[float]] = {}
    for r in results:
        values.setdefault(r["arm"], []).append(float(r["metrics"][PRIMARY]))
    return {arm: statistics.fmean(v) for arm, v in values.items()}


def arm_table(summary: dict, actual: list[dict]) -> list[dict]:
    """One row per arm: the study's prediction, interval, rank and plain value beside the actual outcome."""
    got = _actual_by_arm(actual)
    repetition = {r["arm"]: (r.get("mixture") or {}).get("candidate_repetition") for r in actual}
    base = summary["baseline"]
    rows = [
        {
            "arm": BASELINE,
            "predicted": base["predicted"],
            "low": base["low"],
            "high": base["high"],
            "low_80": base.get("low_80"),
            "high_80": base.get("high_80"),
            "plain": base["measured_at_largest"],
            "actual": got[BASELINE],
            "flags": base["flags"],
        }
    ]
    for r in summary["ranking"]:
        arm = r["candidate"]
        rows.append(
            {
                "arm": arm,
                "predicted": r["predicted"],
                "low": r["low"],
                "high": r["high"],
                "low_80": r.get("low_80"),
                "high_80": r.get("high_80"),
                "plain": r["measured_at_largest"],
                "actual": got[arm],
                "rank": r["rank"],
                "plain_rank": r["rank_at_largest_size"],
                "p_best": r["p_best"],
                "predicted_gain": r["gain_over_baseline"],
                "plain_gain": r["measured_at_largest"] - base["measured_at_largest"],
                "actual_gain": got[arm] - got[BASELINE],
                "repetition_at_largest": r.get("max_repetition"),
                "repetition_at_target": repetition.get(arm),
                "flags": r["flags"],
            }
        )
    return rows


def _pairs(candidates: list[dict], rank_key: str) -> tuple[int, int]:
    """(right, counted) over candidate pairs: the better-ranked one is the one better at the target.

    Pairs whose actual values tie exactly have no right answer and are not counted.
    """
    right = counted = 0
    for a, b in itertools.combinations(candidates, 2):
        if a["actual"] == b["actual"]:
            continue
        counted += 1
        right += (a[rank_key] < b[rank_key]) == (a["actual"] > b["actual"])
    return right, counted


def decision_measures(arms: list[dict]) -> dict:
    """The decision measures of one domain, as counts (so domains pool) and as rates."""
    cands = [a for a in arms if a["arm"] != BASELINE]
    best = max(cands, key=lambda a: a["actual"])["arm"]
    out: dict = {"actual_best": best}
    for predictor, rank_key, gain_key, value_key in (
        ("fitted", "rank", "predicted_gain", "predicted"),
        ("plain", "plain_rank", "plain_gain", "plain"),
    ):
        right, counted = _pairs(cands, rank_key)
        pick = min(cands, key=lambda a: a[rank_key])["arm"]
        add_right = sum(a[gain_key] is not None and (a[gain_key] > 0) == (a["actual_gain"] > 0) for a in cands)
        errors = [abs(a[value_key] - a["actual"]) for a in arms if a[value_key] is not None]
        out[predictor] = {
            "pairs_right": right,
            "pairs": counted,
            "pairwise_accuracy": right / counted if counted else None,
            "top1": pick,
            "top1_right": pick == best,
            "add_right": add_right,
            "add_total": len(cands),
            "abs_errors": errors,
            "median_abs_error": statistics.median(errors) if errors else None,
        }
    for suffix, low, high in (("", "low", "high"), ("_80", "low_80", "high_80")):
        inside = [a[low] <= a["actual"] <= a[high] for a in arms if a.get(low) is not None and a.get(high) is not None]
        out["fitted"]["covered" + suffix] = sum(inside)
        out["fitted"]["intervals" + suffix] = len(inside)
    predicted = {a["arm"]: a["predicted"] for a in arms}
    if predicted.get("indomain_small") is not None and predicted.get("indomain_large") is not None:
        out["small_below_large"] = predicted["indomain_small"] < predicted["indomain_large"]
    return out


def predictor_measures(summary: dict, actual: dict[str, float]) -> dict[str, dict]:
    """Every predictor the study compared, scored on the same actual runs: pairs, top-1 and error."""
    out = {}
    cands = [a for a in actual if a != BASELINE]
    best = max(cands, key=actual.get)
    for name, p in ((summary.get("predictor") or {}).get("predictors") or {}).items():
        pred = {a: v for a, v in (p.get("predicted") or {}).items() if v is not None}
        known = [a for a in cands if a in pred]
        right = counted = 0
        for a, b in itertools.combinations(known, 2):
            if actual[a] != actual[b]:
                counted += 1
                right += (pred[a] > pred[b]) == (actual[a] > actual[b])
        errors = [abs(pred[a] - actual[a]) for a in actual if a in pred]
        out[name] = {
            "pairs_right": right,
            "pairs": counted,
            "top1_right": bool(known) and max(known, key=pred.get) == best,
            "abs_errors": errors,
            "backtest_pairwise": (p.get("backtest") or {}).get("pairwise"),
        }
    return out


def predictor_rows(domains: list[dict]) -> list[list[str]]:
    """One row per predictor: pairwise and top-1 per domain, pooled pairs and median error."""
    names = list(dict.fromkeys(n for d in domains for n in d.get("by_predictor", {})))
    rows = []
    for n in names:
        per = [d["by_predictor"].get(n) for d in domains]
        cells = [
            f"{m['pairs_right']}/{m['pairs']}, top-1 {'right' if m['top1_right'] else 'WRONG'}" if m else "n/a"
            for m in per
        ]
        right, pairs = sum(m["pairs_right"] for m in per if m), sum(m["pairs"] for m in per if m)
        errors = [e for m in per if m for e in m["abs_errors"]]
        top1 = sum(m["top1_right"] for m in per if m)
        used = sum(d.get("predictor") == n for d in domains)
        median = _num(statistics.median(errors) if errors else None)
        total = f"{_frac(right, pairs)}, top-1 {top1}/{len(domains)}, median err {median}"
        rows.append([n + (f" (used in {used})" if used else "")] + cells + [total])
    return rows


def compute(study_runs: list[dict], actual: list[dict]) -> dict:
    """Training tokens of the small study and of the actual runs at the target, and their ratio."""
    small = sum(int(r["train"]["train_tokens"]) for r in study_runs)
    target = sum(int(r["train"]["train_tokens"]) for r in actual)
    return {"study_tokens": small, "actual_tokens": target, "ratio": small / target if target else None}


def overall(domains: list[dict]) -> dict:
    """The measures pooled over domains: pairs, picks and arms counted together."""
    pooled: dict = {}
    for predictor in ("fitted", "plain"):
        per = [d["measures"][predictor] for d in domains]
        errors = [e for p in per for e in p["abs_errors"]]
        pairs, right = sum(p["pairs"] for p in per), sum(p["pairs_right"] for p in per)
        pooled[predictor] = {
            "pairs_right": right,
            "pairs": pairs,
            "pairwise_accuracy": right / pairs if pairs else None,
            "top1_right_domains": sum(p["top1_right"] for p in per),
            "domains": len(per),
            "add_right": sum(p["add_right"] for p in per),
            "add_total": sum(p["add_total"] for p in per),
            "median_abs_error": statistics.median(errors) if errors else None,
        }
    for key in ("covered", "intervals", "covered_80", "intervals_80"):
        pooled["fitted"][key] = sum(d["measures"]["fitted"].get(key, 0) for d in domains)
    pooled["small_below_large"] = sum(bool(d["measures"].get("small_below_large")) for d in domains)
    study = sum(d["compute"]["study_tokens"] for d in domains)
    actual = sum(d["compute"]["actual_tokens"] for d in domains)
    pooled["compute"] = {"study_tokens": study, "actual_tokens": actual, "ratio": study / actual if actual else None}
    return pooled


def _frac(right: int, total: int) -> str:
    return f"{right}/{total} ({right / total:.2f})" if total else "n/a"


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _top1(m: dict) -> str:
    return "right" if m["top1_right"] else f"WRONG ({m['top1']})"


def summary_rows(domains: list[dict], pooled: dict) -> list[list[str]]:
    """The before/after table: one row per measure, one column per domain and one overall."""

    def row(label: str, per_domain, total: str) -> list[str]:
        return [label] + [per_domain(d["measures"], d) for d in domains] + [total]

    f, p = pooled["fitted"], pooled["plain"]
    top1 = "{top1_right_domains}/{domains} domains"
    return [
        row("predictor the study used", lambda m, d: d.get("predictor") or "n/a", ""),
        row(
            "pairwise accuracy, fitted",
            lambda m, d: _frac(m["fitted"]["pairs_right"], m["fitted"]["pairs"]),
            _frac(f["pairs_right"], f["pairs"]),
        ),
        row(
            "pairwise accuracy, plain at largest size",
            lambda m, d: _frac(m["plain"]["pairs_right"], m["plain"]["pairs"]),
            _frac(p["pairs_right"], p["pairs"]),
        ),
        row("top-1, fitted", lambda m, d: _top1(m["fitted"]), top1.format(**f)),
        row("top-1, plain at largest size", lambda m, d: _top1(m["plain"]), top1.format(**p)),
        row("actual best", lambda m, d: m["actual_best"], ""),
        row(
            "top-1 after one refinement (when inconclusive)",
            lambda m, d: _top1(d["refined"]["measures"]["fitted"]) if d.get("refined") else "not refined",
            f"{sum((d['refined'] or d)['measures']['fitted']['top1_right'] for d in domains)}/{len(domains)} domains",
        ),
        row(
            "compute with the refinement: study tokens / actual tokens",
            lambda m, d: _num(d["refined"]["compute"]["ratio"]) if d.get("refined") else "",
            "",
        ),
        row(
            "the study says: inconclusive?",
            lambda m, d: "yes" if (d.get("decision") or {}).get("inconclusive") else "no",
            f"{sum(bool((d.get('decision') or {}).get('inconclusive')) for d in domains)}/{len(domains)}",
        ),
        row(
            "add-or-not right, fitted",
            lambda m, d: _frac(m["fitted"]["add_right"], m["fitted"]["add_total"]),
            _frac(f["add_right"], f["add_total"]),
        ),
        row(
            "add-or-not right, plain",
            lambda m, d: _frac(m["plain"]["add_right"], m["plain"]["add_total"]),
            _frac(p["add_right"], p["add_total"]),
        ),
        row(
            f"median abs(predicted - actual), {PRIMARY}, fitted",
            lambda m, d: _num(m["fitted"]["median_abs_error"]),
            _num(f["median_abs_error"]),
        ),
        row(
            f"median abs(measured at largest - actual), {PRIMARY}",
            lambda m, d: _num(m["plain"]["median_abs_error"]),
            _num(p["median_abs_error"]),
        ),
        row(
            "actual inside the 80 % interval",
            lambda m, d: _frac(m["fitted"].get("covered_80", 0), m["fitted"].get("intervals_80", 0)),
            _frac(f["covered_80"], f["intervals_80"]),
        ),
        row(
            "actual inside the 90 % interval",
            lambda m, d: _frac(m["fitted"]["covered"], m["fitted"]["intervals"]),
            _frac(f["covered"], f["intervals"]),
        ),
        row(
            "indomain_small predicted below indomain_large",
            lambda m, d: {True: "yes", False: "NO"}.get(m.get("small_below_large"), "n/a"),
            f"{pooled['small_below_large']}/{len(domains)}",
        ),
        row(
            f"signal-to-noise: {PRIMARY} / gold_prob",
            lambda m, d: f"{_num(d.get('snr', {}).get(PRIMARY))} / {_num(d.get('snr', {}).get('gold_prob'))}",
            "",
        ),
        row(
            "compute: study tokens / actual tokens",
            lambda m, d: _num(d["compute"]["ratio"]),
            _num(pooled["compute"]["ratio"]),
        ),
        row("benchmark rows removed / planted", lambda m, d: "{removed}/{planted}".format(**d["contamination"]), ""),
    ]


def print_report(domains: list[dict], pooled: dict) -> None:
    for d in domains:
        print(f"\n{d['domain']} ({d['labels']} labels): {PRIMARY} predicted at the target vs actual")
        print_table(
            [
                [
                    a["arm"],
                    _num(a["predicted"]),
                    f"[{_num(a['low'])}, {_num(a['high'])}]",
                    _num(a["plain"]),
                    _num(a["actual"]),
                    a.get("rank", ""),
                    a.get("plain_rank", ""),
                    _num(a.get("repetition_at_target")),
                    ",".join(a["flags"]),
                ]
                for a in d["arms"]
            ],
            ["arm", "predicted", "interval", "at largest", "actual", "rank", "plain rank", "rep@target", "flags"],
        )
    header = ["measure"] + [d["domain"] for d in domains] + ["overall"]
    for title, rows in (
        ("the study's decision", summary_rows(domains, pooled)),
        ("every predictor the studies compared, on the same actual runs", predictor_rows(domains)),
    ):
        print(f"\n{title}\n")
        print_table(rows, header)
        print("\nas markdown:\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")


def _domain_job(name: str, variant: Variant, root: Path) -> dict:
    """One domain, in this process or a pool's: torch threads as a product worker sets them (half the cores)."""
    from core.artifacts import ArtifactStore
    from core.train import configure_threads

    configure_threads()
    return run_domain(DOMAINS[name], variant, ArtifactStore(), root)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="the under-15-minute variant (see FAST)")
    parser.add_argument("--domains", nargs="+", choices=sorted(DOMAINS), help="a subset of the variant's domains")
    parser.add_argument(
        "--jobs", type=int, help="domains run at once, each in its own process (default: all; 1 runs them in turn)"
    )
    args = parser.parse_args(argv)
    variant = FAST if args.fast else FULL
    home = setup_env("/tmp/decisions-bench")
    if args.fast:
        print("fast variant drops: " + "; ".join(dropped(FAST, FULL)))
    root = home / "decisions"  # the generated domains and study outputs, beside the run cache
    names = list(args.domains or variant.domains)
    # One process per domain by default: each trains on one torch thread, and the fast variant with its three
    # domains at once took 9.4 minutes on 2 cores, where one after another would take about 16 (estimated).
    jobs = args.jobs or len(names)
    with Timer() as took:
        if jobs > 1:
            spawn = multiprocessing.get_context("spawn")  # a clean interpreter per job: no forked torch state
            with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
                domains = list(pool.map(_domain_job, names, [variant] * len(names), [root] * len(names)))
        else:
            domains = [_domain_job(name, variant, root) for name in names]
    pooled = overall(domains)
    print_report(domains, pooled)
    payload = {
        "what": "decision quality: the study's ranking at small sizes vs actual runs at 8x the largest size",
        "variant": variant.name,
        "params": {
            "sizes": list(variant.sizes),
            "target_size": variant.target,
            "seeds": list(variant.seeds),
            "kinds": list(variant.kinds),
            "d0_share": D0_SHARE,
            "training": TRAINING,
            "primary_metric": PRIMARY,
        },
        "dropped": dropped(FAST, FULL) if args.fast else [],
        "wall_seconds": round(took.seconds, 1),
        "overall": pooled,
        "domains": domains,
    }
    command = "python -m bench.decisions" + (" --fast" if args.fast else "")
    if args.domains:
        command += " --domains " + " ".join(args.domains)
    write_result("decisions" if args.fast else "decisions_full", payload, command=command)
    return payload


if __name__ == "__main__":
    main()
