"""A study from spec to ranking: prepare data, expand runs, execute each, fit and rank.

The pieces are separate functions because the queue runs them in different processes:
`prepare_study` once per worker (its output is cached on disk), `execute_run` per run,
`summarize_study` once all runs are in. `run_study` chains them in this process for the CLI.

A run's content key hashes everything that decides its result (model, task, data fingerprints,
size, share, seed, training and evaluation settings); a key that already has a result in the
artifacts store is not run again, whichever study asked for it first.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from core import source_cache, tasks
from core.artifacts import ArtifactStore, read_json, write_json, write_text
from core.catalog import resolve_source
from core.decision import assess
from core.decontamination import near_duplicate_indices
from core.evaluation import EvalResult, evaluate_model
from core.mixture import BASELINE, Mixture, build_mixture, decontaminate, split_counts
from core.models import ENCODER, ModelError, check_model_for_task
from core.normalize import DataError, NormalizedData, normalize
from core.prompts import to_prompt_completion
from core.snr import recommendation as snr_recommendation
from core.snr import signal_to_noise
from core.sources import load_source
from core.spec import LOSS_METRICS, SourceSpec, SpecError, StudySpec, dump_spec, stable_hash
from core.train import LoadedModel, TrainResult, load_model, train

log = logging.getLogger(__name__)

RESULT_VERSION = 1
MAX_CHART_POINTS = 3000
REPETITION_WARN = 1.0  # a candidate used more than once per row
# A source cycled more than this many times to reach a size teaches nothing new: such a size is a
# typo (10**6 rows from a 50-row file), refused before any run is enqueued.
MAX_REPETITION = 100
ProgressFn = Callable[[str, int, int, float | None], None]


@dataclass
class PreparedStudy:
    spec: StudySpec
    study_id: str
    d0: NormalizedData
    benchmark: NormalizedData
    candidates: dict[str, NormalizedData]  # decontaminated
    candidate_index: dict[str, list[int]]  # source row index of each kept candidate row
    contamination: dict[str, int]  # exact duplicates of benchmark rows removed
    labels: list[str] | None
    answer_extraction: str
    notes: list[str] = field(default_factory=list)
    near_duplicates: dict[str, int] | None = None  # paraphrases removed; None: not checked (preview, or off)
    source_fingerprints: dict[str, str] | None = None  # each candidate as loaded, before decontamination

    def summary(self) -> dict:
        """What a user checks before spending compute: rows, labels, contamination."""
        return {
            "d0": {"name": self.d0.name, "rows": len(self.d0.rows), "dropped": self.d0.dropped},
            "benchmark": {
                "name": self.benchmark.name,
                "rows": len(self.benchmark.rows),
                "dropped": self.benchmark.dropped,
            },
            "candidates": {
                name: {
                    "rows": len(d.rows),
                    "dropped": d.dropped,
                    "contaminated_removed": self.contamination[name],
                    "near_duplicates_removed": None if self.near_duplicates is None else self.near_duplicates[name],
                }
                for name, d in self.candidates.items()
            },
            "labels": self.labels,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class RunSpec:
    arm: str
    size: int
    seed: int
    key: str

    @property
    def label(self) -> str:
        return f"{self.arm} · {self.size:,} rows · seed {self.seed}"


def is_higher_better(metric: str) -> bool:
    return metric not in LOSS_METRICS


# ------------------------------------------------------------------------------------------------
# Data


def _load(
    src: SourceSpec, task: str, *, seed: int, labels: list[str] | None = None
) -> tuple[NormalizedData, SourceSpec]:
    resolved = resolve_source(src, task=task)
    ident = source_cache.identity(resolved.spec, task, seed, labels, resolved.size_hint)
    cached = source_cache.get(ident[0]) if ident else None
    if cached is not None:
        return cached, resolved.spec
    loaded = load_source(resolved.spec, seed=seed, size_hint=resolved.size_hint)
    data = normalize(loaded, task, resolved.spec, labels=labels)
    if ident:
        source_cache.put(ident[0], ident[1], data)
    return data, resolved.spec


def prepare_study(spec: StudySpec, *, semantic: bool = True) -> PreparedStudy:
    """Load and normalize every source, hold out or load the benchmark, decontaminate candidates.

    `semantic=False` skips the near-duplicate check (it embeds every candidate row: the Setup
    preview leaves it to the queued pre-screen and to Run).
    """
    d0, d0_src = _load(spec.d0, spec.task, seed=0)
    notes: list[str] = list(d0.notes)
    bench, extraction, held_note = _benchmark_for(spec, d0, d0_src)
    if held_note:
        d0 = _subset(d0, held_note[1], d0.name)
        notes.append(held_note[0])
    # Tasks with labels (classification) evaluate over the labels of D0 and the benchmark together.
    labels = None if d0.labels is None else sorted(set(d0.labels) | set(bench.labels or []))
    _check_model(spec, labels)
    threshold = spec.near_duplicate_threshold if semantic else None
    candidates, index, contamination, near, loaded_fingerprints = {}, {}, {}, {}, {}
    for src in spec.candidates:
        data, _ = _load(src, spec.task, seed=0, labels=labels)
        name = src.display_name
        kept, kept_index, removed, paraphrases = _decontaminate(data, bench, spec.task, threshold)
        if not kept:
            raise DataError(f"{name}: every row duplicates a benchmark row; this candidate cannot be used")
        source_index = [data.indices[i] for i in kept_index] if data.indices else kept_index
        changed = removed or paraphrases
        candidates[name] = NormalizedData(
            name=name,
            task=spec.task,
            rows=kept,
            labels=data.labels,
            fingerprint=_decontaminated_fingerprint(data, bench, paraphrases, threshold)
            if changed
            else data.fingerprint,
            dropped=data.dropped,
            notes=data.notes,
            indices=source_index,
        )
        index[name], contamination[name], near[name] = source_index, removed, paraphrases
        loaded_fingerprints[name] = data.fingerprint
        if removed:
            notes.append(f"{name}: {removed} rows duplicate benchmark rows and were removed")
        if paraphrases:
            notes.append(
                f"{name}: {paraphrases} rows are near-duplicates of benchmark rows (cosine >= {threshold}) and were "
                "removed"
            )
    _check_sizes(spec, d0, candidates)
    return PreparedStudy(
        spec=spec,
        study_id=spec.study_id(),
        d0=d0,
        benchmark=bench,
        candidates=candidates,
        candidate_index=index,
        contamination=contamination,
        labels=labels,
        answer_extraction=extraction,
        notes=notes,
        near_duplicates=near if threshold is not None else None,
        source_fingerprints=loaded_fingerprints,
    )


def _benchmark_for(spec: StudySpec, d0: NormalizedData, d0_src: SourceSpec):
    """The benchmark, its answer extraction, and (note, D0 rows kept) when it is held out of D0."""
    if spec.benchmark is not None:
        bench, bench_src = _load(spec.benchmark, spec.task, seed=0)
        return bench, bench_src.answer_extraction, None
    n = spec.benchmark_holdout or 0
    if n >= len(d0.rows):
        raise DataError(
            f"{d0.name}: benchmark_holdout ({n}) must be smaller than D0's {len(d0.rows)} rows; "
            "lower it or give a benchmark source"
        )
    order = np.random.default_rng(0).permutation(len(d0.rows))
    held, kept = sorted(order[:n].tolist()), sorted(order[n:].tolist())
    note = f"benchmark: {n} rows held out of D0 (seed 0)"
    return _subset(d0, held, f"{d0.name} (held out)"), d0_src.answer_extraction, (note, kept)


def _decontaminate(data: NormalizedData, bench: NormalizedData, task: str, threshold: float | None):
    """Rows kept, their positions, exact duplicates removed, near-duplicates removed (0 when unchecked)."""
    kept, kept_index, removed = decontaminate(data.rows, bench.rows, task)
    if threshold is None or not kept:
        return kept, kept_index, removed, 0
    near = set(near_duplicate_indices(kept, bench.rows, task, threshold))
    if not near:
        return kept, kept_index, removed, 0
    keep = [i for i in range(len(kept)) if i not in near]
    return [kept[i] for i in keep], [kept_index[i] for i in keep], removed, len(near)


def _decontaminated_fingerprint(data: NormalizedData, bench: NormalizedData, near: int, threshold) -> str:
    # Unchanged from before semantic decontamination when it removes nothing: cached runs stay valid.
    parts = [data.fingerprint, bench.fingerprint]
    return stable_hash(parts + [threshold] if near else parts)


def _check_model(spec: StudySpec, labels: list[str] | None) -> None:
    """A built-in or local model that cannot serve this task (or these labels) is refused before anything runs."""
    try:
        check_model_for_task(spec.model, tasks.get(spec.task), labels)
    except ModelError as err:
        raise SpecError([f"model: {err}"]) from None


def _check_sizes(spec: StudySpec, d0: NormalizedData, candidates: dict[str, NormalizedData]) -> None:
    """Refuse sizes that would cycle a source more than MAX_REPETITION times (see core.mixture)."""
    largest = max(spec.sizes)
    needs = [(d0.name, "D0 (the baseline is D0 only)", largest, len(d0.rows))]
    from_candidate = largest - int(round(largest * spec.d0_share))
    needs += [(name, "candidate", from_candidate, len(data.rows)) for name, data in candidates.items()]
    for name, what, need, have in needs:
        if need > MAX_REPETITION * have:
            raise DataError(
                f"sizes: the largest size {largest:,} needs {need:,} rows of {what} '{name}', which has {have:,} "
                f"({need / have:,.0f}x repetition, limit {MAX_REPETITION}x); lower 'sizes' or give more data"
            )


def _subset(data: NormalizedData, idx: list[int], name: str) -> NormalizedData:
    from core.normalize import fingerprint_rows

    rows = [data.rows[i] for i in idx]
    return NormalizedData(
        name=name,
        task=data.task,
        rows=rows,
        labels=tasks.get(data.task).labels(rows),
        fingerprint=fingerprint_rows(rows, data.task),
        dropped=0,
        indices=[data.indices[i] for i in idx] if data.indices else idx,
    )


# ------------------------------------------------------------------------------------------------
# Runs


def run_key(prepared: PreparedStudy, arm: str, size: int, seed: int) -> str:
    spec = prepared.spec
    payload = {
        "v": RESULT_VERSION,
        "model": spec.model,
        "task": spec.task,
        "d0": prepared.d0.fingerprint,
        "benchmark": prepared.benchmark.fingerprint,
        "candidate": None if arm == BASELINE else prepared.candidates[arm].fingerprint,
        "size": size,
        "d0_share": None if arm == BASELINE else spec.d0_share,  # the baseline is D0 only
        "seed": seed,
        "training": spec.training.model_dump(exclude={"batching"} if spec.training.batching == "padded" else None),
        "metrics": sorted(spec.metrics or []),
        "labels": prepared.labels,
        "extraction": prepared.answer_extraction,
    }
    return "run-" + stable_hash(payload)[:24]


def plan_runs(prepared: PreparedStudy, refinements: list[dict] | None = None) -> list[RunSpec]:
    """Every (arm × size × seed), the D0-only baseline first; then the runs refinements added (arm, size, seed)."""
    spec = prepared.spec
    arms = [BASELINE] + list(prepared.candidates)
    planned = [(arm, size, seed) for arm in arms for size in spec.sizes for seed in spec.seeds]
    planned += [(r["arm"], int(r["size"]), int(r["seed"])) for r in refinements or []]
    return [RunSpec(arm, size, seed, run_key(prepared, arm, size, seed)) for arm, size, seed in planned]


def refinement_problem(prepared: PreparedStudy, arm: str, size: int) -> str | None:
    """Why `arm` cannot be run at `size` (unknown arm, or its rows cycled past MAX_REPETITION); None if it can."""
    if arm != BASELINE and arm not in prepared.candidates:
        return f"'{arm}' is not an arm of this study"
    d0_rows, cand_rows = split_counts(size, prepared.spec.d0_share, arm)
    have = len(prepared.d0.rows) if arm == BASELINE else len(prepared.candidates[arm].rows)
    need = d0_rows if arm == BASELINE else cand_rows
    if need > MAX_REPETITION * have:
        return f"{arm} has {have:,} rows: {size:,} would repeat them {need / have:,.0f}x (limit {MAX_REPETITION}x)"
    return None


def execute_run(
    prepared: PreparedStudy,
    run: RunSpec,
    *,
    store: ArtifactStore,
    progress: ProgressFn | None = None,
    keep_weights: bool = True,
) -> dict:
    """Train and evaluate one run, store its result under its key; a stored result is reused."""
    existing = store.get_result(run.key)
    if existing is not None:
        return dict(existing, cached=True)
    spec = prepared.spec
    start = time.perf_counter()
    if progress:
        progress("loading", 0, 0, None)
    mixture = mixture_for(prepared, run)
    loaded = load_model(
        spec.model, spec.training, labels=prepared.labels, seed=run.seed, trust_remote_code=spec.trust_remote_code
    )
    loaded_at = time.perf_counter()
    # An encoder classifier trains on the rows themselves; a causal LM on their prompt/completion text.
    rows = mixture.rows if loaded.kind == ENCODER else to_prompt_completion(mixture.rows, spec.task, loaded.tokenizer)
    work = Path(tempfile.mkdtemp(prefix="workbench-run-"))
    try:
        trained = train(loaded, rows, spec.training, seed=run.seed, out_dir=work, progress=progress, save=keep_weights)
        trained_at = time.perf_counter()
        if progress:
            progress("evaluating", 0, len(prepared.benchmark.rows), None)
        evaluation = _evaluate(prepared, loaded)
        weights = _store_weights(store, run, trained.saved_to) if keep_weights and trained.saved_to else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    timings = {
        "load_seconds": round(loaded_at - start, 3),
        "train_seconds": round(trained_at - loaded_at, 3),
        "eval_seconds": evaluation.seconds,
        "total_seconds": round(time.perf_counter() - start, 3),
    }
    result = _run_result(prepared, run, mixture, trained, evaluation, timings=timings, weights=weights)
    store.put_manifest(run.key, mixture.manifest())
    store.put_result(run.key, result)
    return dict(store.get_result(run.key) or result, cached=False)


def mixture_for(prepared: PreparedStudy, run: RunSpec) -> Mixture:
    """The run's training rows: D0 only for the baseline, else D0 and the candidate at the study's share."""
    baseline = run.arm == BASELINE
    return build_mixture(
        prepared.d0.rows,
        None if baseline else prepared.candidates[run.arm].rows,
        size=run.size,
        d0_share=prepared.spec.d0_share,
        seed=run.seed,
        arm=run.arm,
        d0_name=prepared.d0.name,
        candidate_index=None if baseline else prepared.candidate_index[run.arm],
    )


def _evaluate(prepared: PreparedStudy, loaded: LoadedModel) -> EvalResult:
    """The trained model's metrics on the study's benchmark."""
    spec = prepared.spec
    return evaluate_model(
        loaded.model,
        loaded.tokenizer,
        prepared.benchmark.rows,
        task=spec.task,
        metrics=list(spec.metrics or []),
        labels=prepared.labels,
        answer_extraction=prepared.answer_extraction,
        batch_size=spec.training.eval_batch_size,
        max_new_tokens=spec.training.max_new_tokens,
        max_len=spec.training.max_seq_length,
        device=loaded.device,
    )


def _store_weights(store: ArtifactStore, run: RunSpec, saved_to: str) -> str:
    """Move the trained weights into the run's artifacts folder (once: a first copy stays) and return where."""
    run_dir = store.run_dir(run.key)
    target = run_dir / Path(saved_to).name
    if not target.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(saved_to, target)
    return str(target)


def _run_result(
    prepared: PreparedStudy,
    run: RunSpec,
    mixture: Mixture,
    trained: TrainResult,
    evaluation: EvalResult,
    *,
    timings: dict,
    weights: str | None,
) -> dict:
    """The run's result.json: what it measured, how it trained, how long each step took, where its weights are."""
    spec = prepared.spec
    baseline = run.arm == BASELINE
    return {
        "key": run.key,
        "arm": run.arm,
        "size": run.size,
        "seed": run.seed,
        "d0_share": None if baseline else spec.d0_share,
        "model": spec.model,
        "task": spec.task,
        "metrics": evaluation.metrics,
        "train": {k: v for k, v in trained.to_dict().items() if k != "saved_to"},
        "eval": {"seconds": evaluation.seconds, "rows": evaluation.n},
        "timings": timings,
        "mixture": {
            "parts": [dict(p.__dict__, repetition=p.repetition) for p in mixture.parts],
            "candidate_repetition": None if baseline else mixture.candidate_repetition,
        },
        "weights": weights,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "result_version": RESULT_VERSION,
    }


# ------------------------------------------------------------------------------------------------
# Fits and ranking


def measured_points(results: list[dict], metric: str) -> pd.DataFrame:
    """arm, size, seed, value of every run result that measured `metric`: what a fit takes."""
    rows = [
        {"arm": r["arm"], "size": r["size"], "seed": r["seed"], "value": r["metrics"].get(metric)}
        for r in results
        if r.get("metrics") and r["metrics"].get(metric) is not None
    ]
    return pd.DataFrame(rows, columns=["arm", "size", "seed", "value"])


def rank_metric(spec: StudySpec, results: list[dict], metric: str, *, n_boot: int) -> dict:
    """Fit every arm's curve for one metric and rank the candidates at the target size."""
    from core.predictors import PREDICTORS, choose
    from core.ranking import baseline_row, rank_arms
    from core.scaling.repetition import Exposure

    points = measured_points(results, metric)
    higher = is_higher_better(metric)
    if points.empty:
        return {
            "metric": metric,
            "fits": {},
            "ranking": [],
            "baseline": None,
            "study_fit": None,
            "points": points,
            "predictor": None,
        }
    exposure = Exposure.from_results(results, spec.d0_share)
    target = spec.target_size
    choice = choose(points, metric=metric, higher_is_better=higher, target_size=target, exposure=exposure)
    score = choice.scores.get(choice.used)
    calibration = score.calibration(points, higher) if score else None
    study_fit = PREDICTORS[choice.used].fit(
        points,
        metric=metric,
        higher_is_better=higher,
        target_size=target,
        n_boot=n_boot,
        exposure=exposure,
        calibration=calibration,
    )
    ranking = rank_arms(study_fit, points, higher_is_better=higher)
    base = baseline_row(study_fit, points)
    return {
        "metric": metric,
        "fits": study_fit.fits,
        "ranking": ranking,
        "baseline": base,
        "study_fit": study_fit,
        "points": points,
        "predictor": choice,
        "exposure": exposure,
    }


def summarize_study(
    spec: StudySpec,
    results: list[dict],
    *,
    contamination: dict[str, int] | None = None,
    near_duplicates: dict[str, int] | None = None,
    failed: list[dict] | None = None,
) -> dict:
    """metrics.json content: runs, fits, ranking (primary metric), rankings by the other metrics.

    `contamination` / `near_duplicates`: candidate rows removed as exact / near duplicates of benchmark rows.
    """
    primary = spec.primary_metric or (spec.metrics or ["loss"])[0]
    main = rank_metric(spec, results, primary, n_boot=spec.bootstrap)
    ranking = _primary_ranking(main, results, spec.target_size)
    others, snr = _other_metrics(spec, results, primary)
    snr = {primary: signal_to_noise(main["points"], _residual_fit(main))} | snr
    warnings = sorted({f"{r['candidate']}: {flag}" for r in ranking for flag in r["flags"]})
    summary = {
        "study": spec.name,
        "study_id": spec.study_id(),
        "model": spec.model,
        "task": spec.task,
        "primary_metric": primary,
        "higher_is_better": is_higher_better(primary),
        "metrics": list(spec.metrics or []),
        "target_size": spec.target_size,
        "sizes": list(spec.sizes),
        "seeds": list(spec.seeds),
        "d0_share": spec.d0_share,
        "runs": [
            {
                k: r.get(k)
                for k in (
                    "candidate",
                    "arm",
                    "size",
                    "seed",
                    "key",
                    "metrics",
                    "train",
                    "eval",
                    "timings",
                    "mixture",
                    "d0_share",
                    "cached",
                )
            }
            | {"candidate": r["arm"]}
            for r in sorted(results, key=lambda r: (r["arm"] != BASELINE, r["arm"], r["size"], r["seed"]))
        ],
        "failed_runs": failed or [],
        "fits": {arm: f.to_dict() for arm, f in main["fits"].items()},
        "ranking": ranking,
        "baseline": main["baseline"].to_dict() if main["baseline"] else None,
        "ranking_by_metric": others,
        "contamination": contamination or {},
        "near_duplicates": near_duplicates,
        "predictor": main["predictor"].to_dict() if main["predictor"] else None,
        "signal_to_noise": snr,
        "regime": training_regime(spec),
        "snr_recommendation": snr_recommendation(snr, primary),
        "warnings": warnings,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "curves": _curve_records(main, spec.target_size),
    }
    summary["top_gap"] = _top_gap(main, ranking, is_higher_better(primary))
    summary["decision"] = assess(summary)
    return summary


REGIME_SPREAD = 1.5  # small sizes training this many times more passes than the target are another regime


def training_regime(spec: StudySpec) -> dict:
    """Passes over its rows each size trains for (core.train.step_budget), and a warning when the
    small sizes train many more than the target: a step floor makes them another regime."""
    from core.train import step_budget

    passes = {int(n): round(step_budget(int(n), spec.training)[1], 2) for n in spec.sizes}
    at_target = round(step_budget(int(spec.target_size), spec.training)[1], 2)
    smallest = passes[min(passes)]
    warning = None
    if smallest > REGIME_SPREAD * at_target:
        warning = (
            f"the smallest size trains {smallest:g} passes over its rows, the target {at_target:g} (min_steps "
            f"{spec.training.min_steps}): the small runs measure another training regime than the one predicted; "
            "lower min_steps, or use a model that learns in fewer steps"
        )
    return {"passes": passes, "target_passes": at_target, "warning": warning}


def _primary_ranking(main: dict, results: list[dict], target_size: int) -> list[dict]:
    """The primary metric's ranking rows, with each candidate's repetition and backtest error."""
    repetition = _repetition_by_arm(results)
    ranking = []
    for row in main["ranking"]:
        d = row.to_dict()
        rep = repetition.get(d["candidate"], 0.0)
        d["max_repetition"] = rep
        d["repetition_at_target"] = main["exposure"].repetition(d["candidate"], target_size)
        if rep > REPETITION_WARN:
            d["flags"] = list(d["flags"]) + ["repeated_data"]
            d["notes"] = list(d.get("notes", [])) + [
                f"the candidate had too few rows: each was used up to {rep:.1f}× to reach a size; repeated "
                "data is worth less"
            ]
        fit = main["fits"].get(d["candidate"])
        d["backtest_abs_error"] = fit.backtest.abs_error if fit is not None and fit.backtest is not None else None
        ranking.append(d)
    return ranking


def _other_metrics(spec: StudySpec, results: list[dict], primary: str) -> tuple[dict, dict]:
    """The rankings by every other metric (fewer bootstrap replicates), and each one's signal-to-noise."""
    others, snr = {}, {}
    for metric in spec.metrics or []:
        if metric == primary:
            continue
        other = rank_metric(spec, results, metric, n_boot=min(spec.bootstrap, 100))
        others[metric] = {
            "ranking": [r.to_dict() for r in other["ranking"]],
            "baseline": other["baseline"].to_dict() if other["baseline"] else None,
            "predictor": other["predictor"].used if other["predictor"] else None,
        }
        snr[metric] = signal_to_noise(other["points"], _residual_fit(other))
    return others, snr


def _top_gap(ranked: dict, ranking: list[dict], higher: bool) -> dict | None:
    """The first candidate's lead over the second at the target (in the metric's better direction), paired."""
    fit = ranked["study_fit"]
    top = [r["candidate"] for r in sorted(ranking, key=lambda r: r["rank"])][:2]
    gap = fit.gap(*top) if fit is not None and len(top) == 2 else None
    if gap is None:
        return None
    value, low, high = gap if higher else (-gap[0], -gap[2], -gap[1])
    return {"first": top[0], "second": top[1], "value": value, "low": low, "high": high}


def _residual_fit(ranked: dict):
    """The fit a metric's noise is read around (one seed): the default law's, whichever predictor ranked."""
    from core.predictors import DEFAULT

    choice = ranked.get("predictor")
    return choice.fits.get(DEFAULT, ranked["study_fit"]) if choice is not None else ranked["study_fit"]


def _curve_records(ranked: dict, target_size: int) -> list[dict]:
    """The primary metric's curves table (core.results) as metrics.json stores it."""
    from core.results import curve_records, curves_table

    points = ranked["points"]
    if ranked["study_fit"] is None or points.empty:
        return []
    curves = curves_table(ranked["study_fit"], float(points["size"].min()), float(points["size"].max()), target_size)
    return curve_records(curves)


def _repetition_by_arm(results: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in results:
        rep = (r.get("mixture") or {}).get("candidate_repetition")
        if rep is not None:
            out[r["arm"]] = max(out.get(r["arm"], 0.0), float(rep))
    return out


def write_study_outputs(summary: dict, out_dir: Path, spec: StudySpec) -> dict:
    """Write metrics.json, the spec, and the scaling and ranking charts (JSON spec + PNG)."""
    from core.charts import ranking_chart, save_chart, scaling_chart
    from core.results import StudyResult

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = StudyResult.from_dict(summary)
    points = result.points()
    files = {"metrics": str(out_dir / "metrics.json")}
    write_text(out_dir / "spec.yaml", dump_spec(spec))
    if not points.empty:
        curves = result.curves
        if len(points) > MAX_CHART_POINTS:  # Altair refuses more than 5,000 rows: draw the mean over seeds
            points = points.groupby(["arm", "size"], as_index=False)["value"].mean().assign(seed=-1)
        chart = scaling_chart(
            points,
            curves,
            metric=summary["primary_metric"],
            target_size=spec.target_size,
            higher_is_better=summary["higher_is_better"],
        )
        files["scaling_chart"] = [
            str(p) for p in save_chart(chart.properties(title=f"{spec.name}: scaling curves"), out_dir / "scaling")
        ]
        if summary["ranking"]:
            frame = pd.DataFrame(summary["ranking"])
            frame = frame[frame["predicted"].notna()]
            if not frame.empty:
                base = (summary.get("baseline") or {}).get("predicted")
                rchart = ranking_chart(
                    frame,
                    metric=summary["primary_metric"],
                    baseline_value=base,
                    higher_is_better=summary["higher_is_better"],
                )
                files["ranking_chart"] = [str(p) for p in save_chart(rchart, out_dir / "ranking")]
    summary["files"] = files
    write_json(out_dir / "metrics.json", summary)
    return summary


# ------------------------------------------------------------------------------------------------
# The whole study, in this process


def run_study(
    spec: StudySpec,
    out_dir: str | Path,
    *,
    store: ArtifactStore | None = None,
    on_run: Callable[[RunSpec, int, int], None] | None = None,
    on_result: Callable[[RunSpec, dict], None] | None = None,
    progress_for: Callable[[RunSpec], ProgressFn | None] | None = None,
    refinements: list[dict] | None = None,
) -> dict:
    """Prepare, run every run (reusing stored results), fit, rank, and write the outputs.

    `refinements` adds runs (arm, size, seed) beyond the spec's grid, as `workbench refine` does;
    with `refine: auto` an inconclusive study adds its proposed runs itself within `refine_budget`,
    as the queue's ranking job does."""
    store = store or ArtifactStore()
    prepared = prepare_study(spec)
    refinements = list(refinements or [])
    while True:
        results, failed = _execute_all(
            prepared, plan_runs(prepared, refinements), store, on_run, on_result, progress_for
        )
        summary = summarize_study(
            spec, results, contamination=prepared.contamination, near_duplicates=prepared.near_duplicates, failed=failed
        )
        added = _auto_refinement(spec, summary.get("decision") or {}, refinements)
        if not added:
            break
        log.info("inconclusive: refining with %d runs at %d rows", len(added), added[0]["size"])
        refinements += added
    summary["data"] = prepared.summary()
    write_study_outputs(dict(summary), store.study_dir(prepared.study_id), spec)
    return write_study_outputs(summary, Path(out_dir), spec)


def _execute_all(prepared, runs, store, on_run, on_result, progress_for) -> tuple[list[dict], list[dict]]:
    """Every run in order (stored results reused); the results, and the runs that failed with their error."""
    results, failed = [], []
    for i, run in enumerate(runs):
        if on_run:
            on_run(run, i, len(runs))
        try:
            result = execute_run(prepared, run, store=store, progress=progress_for(run) if progress_for else None)
        except (DataError, ValueError, RuntimeError) as err:
            log.error("run %s failed: %s", run.label, err)
            failed.append({"arm": run.arm, "size": run.size, "seed": run.seed, "key": run.key, "error": str(err)})
            continue
        results.append(result)
        if on_result:
            on_result(run, result)
    return results, failed


def _auto_refinement(spec: StudySpec, decision: dict, done: list[dict]) -> list[dict]:
    """`refine: auto`: the proposed runs of an inconclusive study, when they are new and fit in refine_budget."""
    proposal = decision.get("proposal")
    if spec.refine != "auto" or not decision.get("inconclusive") or not proposal:
        return []
    added = [{"arm": a, "size": proposal["size"], "seed": s} for a in proposal["arms"] for s in proposal["seeds"]]
    if any(r in done for r in added) or len(done) + len(added) > spec.refine_budget:
        return []
    return added


# ------------------------------------------------------------------------------------------------
# Prepared data on disk, so queue workers skip loading and normalizing the sources again


def save_prepared(prepared: PreparedStudy, folder: str | Path) -> Path:
    """Write the normalized, decontaminated data of a study (JSON, atomic) and return the file."""
    from dataclasses import asdict

    path = Path(folder) / "prepared.json"
    payload = {
        "spec": prepared.spec.model_dump(mode="json"),
        "study_id": prepared.study_id,
        "d0": asdict(prepared.d0),
        "benchmark": asdict(prepared.benchmark),
        "candidates": {k: asdict(v) for k, v in prepared.candidates.items()},
        "candidate_index": prepared.candidate_index,
        "contamination": prepared.contamination,
        "near_duplicates": prepared.near_duplicates,
        "source_fingerprints": prepared.source_fingerprints,
        "labels": prepared.labels,
        "answer_extraction": prepared.answer_extraction,
        "notes": prepared.notes,
    }
    write_json(path, payload)
    return path


def load_prepared(folder: str | Path) -> PreparedStudy:
    from core.spec import StudySpec

    data = read_json(Path(folder) / "prepared.json")
    if data is None:
        raise FileNotFoundError(f"no prepared data in {folder}; submit the study again")
    return PreparedStudy(
        spec=StudySpec.model_validate(data["spec"]),
        study_id=data["study_id"],
        d0=NormalizedData(**data["d0"]),
        benchmark=NormalizedData(**data["benchmark"]),
        candidates={k: NormalizedData(**v) for k, v in data["candidates"].items()},
        candidate_index=data["candidate_index"],
        contamination=data["contamination"],
        labels=data["labels"],
        answer_extraction=data["answer_extraction"],
        notes=data["notes"],
        near_duplicates=data.get("near_duplicates"),  # absent in studies prepared before they existed
        source_fingerprints=data.get("source_fingerprints"),
    )
