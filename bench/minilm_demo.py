"""The MiniLM demo against runs at its target size, and its pre-screen (docs/MODELS.md's figures).

    python -m bench.minilm_demo            # about 20 min on 2 CPU cores; stored runs are reused

Runs catalog/demo_study_minilm.yaml as `workbench demo --model builtin:minilm` does (with its
`refine: auto`), then every arm once at the target size, then the embedding pre-screen of the same
data; prints predicted beside actual per arm and writes bench/results/minilm_demo.json.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench._common import print_table, setup_env, write_result

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPEC = PROJECT_ROOT / "catalog" / "demo_study_minilm.yaml"


def main() -> dict:
    home = setup_env()
    from core.artifacts import ArtifactStore
    from core.prescreen import agreement, screen
    from core.spec import load_spec
    from core.study import RunSpec, execute_run, prepare_study, run_key, run_study
    from core.train import configure_threads

    configure_threads()
    spec = load_spec(SPEC)
    start = time.perf_counter()
    summary = run_study(spec, home.parent / "minilm-demo-out")
    study_seconds = time.perf_counter() - start
    prepared = prepare_study(spec)
    store = ArtifactStore()
    actual = {}
    for arm in ["baseline", *prepared.candidates]:
        run = RunSpec(arm, spec.target_size, 0, run_key(prepared, arm, spec.target_size, 0))
        actual[arm] = execute_run(prepared, run, store=store, keep_weights=False)["metrics"][spec.primary_metric]
    screened = screen(prepared)
    predicted = {r["candidate"]: r["predicted"] for r in summary["ranking"]}
    predicted["baseline"] = summary["baseline"]["predicted"]
    trained = [r["candidate"] for r in summary["ranking"]]
    by_actual = sorted(prepared.candidates, key=lambda a: -actual[a])
    result = {
        "spec": str(SPEC.relative_to(PROJECT_ROOT)),
        "study_seconds": round(study_seconds, 1),
        "runs": len(summary["runs"]),
        "decision": summary.get("decision"),
        "predicted": predicted,
        "actual_at_target": actual,
        "ranking_trained": trained,
        "ranking_actual": by_actual,
        "ranking_prescreen": screened["ranking"],
        "prescreen_vs_trained": agreement(screened["ranking"], trained),
        "prescreen_vs_actual": agreement(screened["ranking"], by_actual),
        "trained_vs_actual": agreement(trained, by_actual),
    }
    rows = [[a, f"{predicted[a]:.3f}", f"{actual[a]:.3f}", f"{predicted[a] - actual[a]:+.3f}"] for a in actual]
    print_table(rows, ["arm", "predicted", f"actual at {spec.target_size:,}", "error"])
    for key in ("ranking_trained", "ranking_actual", "ranking_prescreen"):
        print(f"{key}: {', '.join(result[key])}")
    write_result("minilm_demo", result, command="python -m bench.minilm_demo")
    return result


if __name__ == "__main__":
    main()
