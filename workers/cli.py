"""`workbench`: the command line.

`run` and `demo` run a whole study in this process with no server: what a GPU operator uses from a
script. Heavy imports happen inside the commands so that `workbench --help` is instant.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from core.paths import PROJECT_ROOT

DEMO_SPEC = PROJECT_ROOT / "catalog" / "demo_study.yaml"
DEMO_FAST_SPEC = PROJECT_ROOT / "catalog" / "demo_study_fast.yaml"


def _quiet_libraries() -> None:
    """Keep the terminal for our progress: the ML stack is chatty at import and per step."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("transformers", "trl", "datasets", "peft", "accelerate", "bitsandbytes", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:
        pass


def _print_ranking(summary: dict, out=sys.stdout) -> None:
    metric = summary["primary_metric"]
    target = summary["target_size"]
    base = summary.get("baseline") or {}
    print(f"\nRanking by predicted {metric} at {target:,} rows ({summary['study']}):", file=out)
    header = f"{'#':>2}  {'candidate':<20} {'predicted':>9} {'90% interval':>17} {'vs baseline':>11} {'P(best)':>7}  {'at ' + format(max(summary['sizes']), ','):>9} {'#':>2}  flags"
    print(header, file=out)
    print("-" * len(header), file=out)

    def fmt(x, spec="{:.3f}"):
        return spec.format(x) if x is not None else "-"

    for r in summary["ranking"]:
        interval = f"[{fmt(r['low'])}, {fmt(r['high'])}]"
        print(
            f"{r['rank']:>2}  {r['candidate'][:20]:<20} {fmt(r['predicted']):>9} {interval:>17} "
            f"{fmt(r['gain_over_baseline'], '{:+.3f}'):>11} {fmt(r['p_best'], '{:.2f}'):>7}  "
            f"{fmt(r['measured_at_largest']):>9} {r['rank_at_largest_size']:>2}  {', '.join(r['flags']) or ''}",
            file=out,
        )
    if base:
        interval = f"[{fmt(base.get('low'))}, {fmt(base.get('high'))}]"
        print(f"{'':>2}  {'baseline (D0 only)':<20} {fmt(base.get('predicted')):>9} {interval:>17}", file=out)
    for w in summary.get("warnings", []):
        print(f"warning: {w}", file=out)
    if summary.get("failed_runs"):
        print(f"{len(summary['failed_runs'])} run(s) failed; see metrics.json 'failed_runs'", file=out)


def _run_with_progress(spec, out_dir: Path) -> dict:
    from tqdm import tqdm

    from core.study import run_study

    state: dict = {}
    total = len(spec.sizes) * len(spec.seeds) * (len(spec.candidates) + 1)
    interactive = sys.stderr.isatty()
    # On a terminal a live bar; in logs (CI, a worker's output) one line per finished run.
    bar = tqdm(total=total, unit="run", dynamic_ncols=True, disable=not interactive, mininterval=0.5)
    started = time.perf_counter()

    def on_run(run, i, n):
        bar.set_description(run.label)

    def on_result(run, result):
        metric = spec.primary_metric
        value = result["metrics"].get(metric)
        state["last"] = f"{metric}={value:.3f}" + (" (cached)" if result.get("cached") else "")
        bar.set_postfix_str(state["last"])
        bar.update(1)
        state["done"] = state.get("done", 0) + 1
        if not interactive:
            took = result.get("timings", {}).get("total_seconds", 0.0)
            print(
                f"[{state['done']}/{total}] {run.label}: {state['last']}, {result['train']['steps']} steps, "
                f"{took:.1f} s (elapsed {time.perf_counter() - started:.0f} s)",
                flush=True,
            )

    def progress_for(run):
        def progress(phase, step, total, loss):
            if phase == "training" and total:
                bar.set_postfix_str(f"training {step}/{total}" + (f" loss {loss:.3f}" if loss is not None else ""))
            elif phase == "evaluating":
                bar.set_postfix_str("evaluating")

        return progress

    try:
        return run_study(spec, out_dir, on_run=on_run, on_result=on_result, progress_for=progress_for)
    finally:
        bar.close()


def cmd_run(args: argparse.Namespace) -> int:
    from core.spec import load_spec

    spec = load_spec(args.spec)
    out = Path(args.out or spec.output_dir or f"out/{spec.study_id()}")
    return _run_and_report(spec, out)


def cmd_demo(args: argparse.Namespace) -> int:
    from core.spec import load_spec

    spec = load_spec(DEMO_FAST_SPEC if args.fast else DEMO_SPEC)
    out = Path(args.out or ("out/demo-fast" if args.fast else "out/demo"))
    return _run_and_report(spec, out)


def _run_and_report(spec, out: Path) -> int:
    _quiet_libraries()
    start = time.perf_counter()
    runs = len(spec.sizes) * len(spec.seeds) * (len(spec.candidates) + 1)
    print(f"study '{spec.name}' ({spec.study_id()}): {runs} runs, model {spec.model}, output {out}", flush=True)
    summary = _run_with_progress(spec, out)
    _print_ranking(summary)
    print(f"\nwrote {out / 'metrics.json'} and the charts beside it in {time.perf_counter() - start:.0f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Data Curation Workbench: which candidate dataset is worth adding?")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run a whole study in this process (no server) and write metrics.json")
    p.add_argument("spec", help="study spec, YAML or JSON")
    p.add_argument("--out", help="output folder (default: the spec's output_dir, or out/<study id>)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="run the shipped offline demo study (no network needed)")
    p.add_argument("--fast", action="store_true", help="one seed, three small sizes: a few minutes on a laptop CPU")
    p.add_argument("--out", help="output folder (default: out/demo or out/demo-fast)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from core.normalize import DataError
    from core.sources import SourceError
    from core.spec import SpecError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (SpecError, DataError, SourceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished runs are kept in the artifacts store and will not be run again", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
