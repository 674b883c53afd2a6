"""`workbench`: the command line.

`run` and `demo` run a whole study in this process with no server: what a GPU operator uses from a
script. Heavy imports happen inside the commands so that `workbench --help` is instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from core.paths import PROJECT_ROOT

DEMO_SPEC = PROJECT_ROOT / "catalog" / "demo_study.yaml"
DEMO_FAST_SPEC = PROJECT_ROOT / "catalog" / "demo_study_fast.yaml"
DEMO_MINILM_SPEC = PROJECT_ROOT / "catalog" / "demo_study_minilm.yaml"  # one seed, three sizes, like --fast


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
    # Measured at each arm's largest size: the spec's largest, or beyond it for the arms a refinement ran.
    refined = any(r["size"] > max(summary["sizes"]) for r in summary.get("runs") or [])
    measured = "measured" if refined else "at " + format(max(summary["sizes"]), ",")
    print(f"\nRanking by predicted {metric} at {target:,} rows ({summary['study']}):", file=out)
    header = (
        f"{'#':>2}  {'candidate':<20} {'predicted':>9} {'90% interval':>17} {'vs baseline':>11} "
        f"{'P(best)':>7}  {measured:>9} {'#':>2}  flags"
    )
    print(header, file=out)
    print("-" * len(header), file=out)

    def fmt(x, spec="{:.3f}"):
        return spec.format(x) if x is not None else "-"

    from core.results import StudyResult

    for r in StudyResult.from_dict(summary).ranking_summary():
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

    seen: set[str] = set()  # a refinement pass (refine: auto) goes over the runs already done again

    def on_run(run, i, n):
        if i == 0 and seen:
            print(f"inconclusive: following the proposal, {n - len(seen)} more runs", flush=True)
        state["total"] = n
        bar.total = n
        bar.set_description(run.label)

    def on_result(run, result):
        if run.key in seen:
            return
        seen.add(run.key)
        metric = spec.primary_metric
        value = result["metrics"].get(metric)
        state["last"] = f"{metric}={value:.3f}" + (" (cached)" if result.get("cached") else "")
        bar.set_postfix_str(state["last"])
        bar.update(1)
        if not interactive:
            took = result.get("timings", {}).get("total_seconds", 0.0)
            print(
                f"[{len(seen)}/{state['total']}] {run.label}: {state['last']}, {result['train']['steps']} steps, "
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

    if args.model == "builtin:minilm":
        spec, default_out = load_spec(DEMO_MINILM_SPEC), "out/demo-minilm"
    else:
        spec = load_spec(DEMO_FAST_SPEC if args.fast else DEMO_SPEC)
        default_out = "out/demo-fast" if args.fast else "out/demo"
    out = Path(args.out or default_out)
    return _run_and_report(spec, out)


def _run_and_report(spec, out: Path) -> int:
    import gc

    from core.train import configure_threads
    from workers.worker import preload

    _quiet_libraries()
    configure_threads()
    preload()
    gc.collect()
    # the ML stack leaves the collector's view: accelerate's gc.collect after each run takes ms, not a second
    gc.freeze()
    start = time.perf_counter()
    runs = len(spec.sizes) * len(spec.seeds) * (len(spec.candidates) + 1)
    print(f"study '{spec.name}' ({spec.study_id()}): {runs} runs, model {spec.model}, output {out}", flush=True)
    summary = _run_with_progress(spec, out)
    _print_ranking(summary)
    print(f"\nwrote {out / 'metrics.json'} and the charts beside it in {time.perf_counter() - start:.0f} s")
    return 0


def _redis():
    from workers.connection import get_redis

    return get_redis()


def stop_processes(procs: list, timeout: float) -> None:
    """Ctrl-C each child still running, then wait for all; kill what outlives `timeout`."""
    import signal
    import subprocess

    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()


def cmd_up(args: argparse.Namespace) -> int:
    """Start Redis (embedded unless REDIS_URL is set) and worker(s); Ctrl-C stops them all."""
    import signal
    import subprocess

    from workers.redis_server import EmbeddedRedis

    def _stop(signum, frame):  # `kill` / `docker stop` clean up like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    embedded = None
    env = dict(os.environ)
    if not os.environ.get("REDIS_URL"):
        embedded = EmbeddedRedis().start()
        env["REDIS_URL"] = embedded.url
        print(f"embedded Redis at {embedded.url} (append-only file in {embedded.folder})", flush=True)
    else:
        from workers.connection import _safe

        print(f"using Redis at {_safe(os.environ['REDIS_URL'])}", flush=True)
    procs = []
    try:
        for _ in range(args.workers):
            procs.append(subprocess.Popen([sys.executable, "-m", "workers.cli", "worker"], env=env))
        print(f"{args.workers} worker(s) started on queues gpu, default", flush=True)
        if args.dashboard:
            procs.append(subprocess.Popen(dashboard_command(args.port), env=env))
            print(f"dashboard at http://localhost:{args.port}", flush=True)
        print("Ctrl-C stops everything", flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        bad = [p for p in procs if p.poll() not in (None, 0)]
        return 1 if bad else 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop_processes(procs, timeout=20)
        if embedded:
            embedded.stop()
            print("embedded Redis stopped", flush=True)


AUTH_ENV = {  # environment variable -> key of Streamlit's [auth] section (OIDC sign-in)
    "AUTH_REDIRECT_URI": "redirect_uri",
    "AUTH_COOKIE_SECRET": "cookie_secret",
    "AUTH_CLIENT_ID": "client_id",
    "AUTH_CLIENT_SECRET": "client_secret",
    "AUTH_SERVER_METADATA_URL": "server_metadata_url",
}


def auth_secrets_file() -> Path | None:
    """Write Streamlit's `[auth]` section from AUTH_* variables (compose's .env); None when unset.

    The file is the dashboard's own (mode 0600, under WORKBENCH_HOME): Streamlit reads sign-in
    settings only from secrets files, and a container is configured through its environment.
    """
    import json

    from core.paths import workbench_home

    given = {key: os.environ.get(var, "").strip() for var, key in AUTH_ENV.items()}
    if not any(given.values()):
        return None
    missing = [var for var, key in AUTH_ENV.items() if not given[key]]
    if missing:
        raise ValueError(
            f"sign-in is half configured: set {', '.join(missing)} too, or unset every AUTH_* variable to run "
            "without sign-in"
        )
    folder = workbench_home() / "streamlit"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "secrets.toml"
    body = "[auth]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in given.items())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(body)
    os.chmod(path, 0o600)
    return path


def dashboard_command(port: int, address: str | None = None) -> list[str]:
    """The Streamlit command line of the dashboard (`workbench up` and `workbench dashboard`)."""
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PROJECT_ROOT / "app" / "main.py"),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        # a set address also keeps Streamlit from looking up this machine's public IP
        "--browser.serverAddress",
        os.environ.get("WORKBENCH_PUBLIC_HOST", "localhost"),
    ]
    if address:
        cmd += ["--server.address", address]
    secrets = auth_secrets_file()
    if secrets:  # Streamlit's default places first, ours last (later files win)
        defaults = [Path.home() / ".streamlit" / "secrets.toml", Path.cwd() / ".streamlit" / "secrets.toml"]
        cmd += ["--secrets.files", ",".join(str(p) for p in [*defaults, secrets])]
    return cmd


def cmd_dashboard(args: argparse.Namespace) -> int:
    """The dashboard alone, against REDIS_URL (a compose `app` service; `up` starts it with the rest)."""
    import signal
    import subprocess

    from workers.connection import get_redis

    get_redis()  # fail early, with the address, when Redis is not reachable
    proc = subprocess.Popen(dashboard_command(args.port, args.address))
    print(f"dashboard at http://{os.environ.get('WORKBENCH_PUBLIC_HOST', 'localhost')}:{args.port}", flush=True)

    def _forward(signum, frame):
        proc.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, _forward)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            return 1


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 when this service can do its work: the container health check."""
    import socket
    import tempfile
    import urllib.request

    from core.paths import artifacts_dir
    from workers.connection import get_redis

    problems = []
    try:
        redis = get_redis()
    except ConnectionError as err:
        redis = None
        problems.append(str(err))
    root = artifacts_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".health-"):
            pass
    except OSError as err:
        problems.append(
            f"artifacts folder {root} is not writable ({err.strerror}): mount a volume this user can write, or "
            "set ARTIFACTS_DIR"
        )
    if args.dashboard:
        url = args.dashboard.rstrip("/") + "/_stcore/health"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = resp.read().decode(errors="replace").strip()
            if body != "ok":
                problems.append(f"dashboard at {url} answered {body[:80]!r}, not 'ok'")
        except OSError as err:
            problems.append(f"dashboard at {url} does not answer: {err}")
    if args.worker and redis is not None:
        from rq import Worker

        host = socket.gethostname()
        mine = [w for w in Worker.all(connection=redis) if w.hostname == host]
        if not mine:
            problems.append(
                f"no worker of host {host} is registered in Redis: the worker process is not running (see its log)"
            )
    for p in problems:
        print(f"unhealthy: {p}", file=sys.stderr)
    if not problems:
        print("healthy")
    return 1 if problems else 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.connection import get_redis, redis_url
    from workers.worker import run_worker

    _quiet_libraries()
    get_redis()  # fail early with a clear message
    queues = [q.strip() for q in args.queues.split(",") if q.strip()] if args.queues else None
    ok = run_worker(redis_url(), queues, burst=args.burst, name=args.name)
    return 0 if ok or args.burst else 1


def cmd_prescreen(args: argparse.Namespace) -> int:
    from core.spec import load_spec
    from workers import prescreen
    from workers.client import preview

    spec = load_spec(args.spec)
    key = preview(spec, sample=0)["prescreen_key"]
    conn = _redis()
    state = prescreen.start(conn, spec, key)
    deadline = time.monotonic() + args.timeout
    shown = None
    while state["status"] in ("queued", "started") and time.monotonic() < deadline:
        line = _prescreen_line(state)
        if line != shown:
            print(line, file=sys.stderr, flush=True)
            shown = line
        time.sleep(1.0)
        state = prescreen.status(conn, key)
    if state["status"] != "finished":
        why = state.get("error") or f"still {state['status']} after {args.timeout:.0f} s (is a worker running?)"
        print(f"pre-screen {key}: {why}", file=sys.stderr)
        return 1
    result = state["result"]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_prescreen(result)
    return 0


def _prescreen_line(state: dict) -> str:
    progress = state.get("progress") or {}
    total = progress.get("total")
    done = f" {progress.get('done')}/{total}" if total else ""
    return f"pre-screen {state['status']}: {progress.get('phase') or 'waiting for a worker'}{done}"


def _print_prescreen(result: dict) -> None:
    from core.prescreen import table

    print(f"Pre-screen by {result['score']} ({result['sample']} rows sampled per source, {result['seconds']} s):")
    print(table(result).round(3).to_string(index=False))


def cmd_submit(args: argparse.Namespace) -> int:
    from core.spec import load_spec
    from workers.backends import get_backend
    from workers.client import SubmitOptions, submit

    spec = load_spec(args.spec)
    given = {o.name: getattr(args, o.name) for o in get_backend(args.backend).options if o.flag}
    options = SubmitOptions(
        backend=args.backend,
        submitted_by=args.user or os.environ.get("USER") or "",
        run_timeout=args.run_timeout,
        backend_options={name: value for name, value in given.items() if value is not None},
        prescreen=args.prescreen,
    )
    study_id = submit(_redis(), spec, options)
    print(
        f"submitted '{spec.name}': {len(spec.sizes) * len(spec.seeds) * (len(spec.candidates) + 1)} runs on "
        f"backend {args.backend}"
    )
    print(study_id)
    return 0


def _fmt_runs_table(st: dict) -> str:
    lines = [f"{'run':<26} {'arm':<14} {'size':>7} {'seed':>4}  {'status':<9} {'phase':<10} {'progress':>9}  metric"]
    metric = st["study"].get("primary_metric", "")
    for r in st["runs"]:
        prog = f"{r.get('step', 0)}/{r.get('total', 0)}" if r.get("total") else ""
        value = (r.get("metrics") or {}).get(metric) if isinstance(r.get("metrics"), dict) else None
        lines.append(
            f"{r['id']:<26} {str(r.get('arm'))[:14]:<14} {r.get('size', 0):>7} {r.get('seed', 0):>4}  "
            f"{r.get('status', ''):<9} "
            f"{str(r.get('phase', ''))[:10]:<10} {prog:>9}  {'' if value is None else format(value, '.4f')}"
            + (f"  error: {r['error']}" if r.get("error") and r.get("status") == "failed" else "")
        )
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from workers.client import study_status
    from workers.store import JobStore

    redis = _redis()
    if not args.study:
        studies = JobStore(redis).studies()
        if args.json:
            print(json.dumps([{k: v for k, v in s.items() if k != "spec"} for s in studies], indent=2, default=str))
            return 0
        if not studies:
            print("no studies yet: `workbench submit SPEC` (the demo: catalog/demo_study_fast.yaml)")
        for s in studies:
            print(f"{s['id']:<24} {s.get('status', ''):<9} {s.get('n_runs', 0):>5} runs  {s.get('name', '')}")
        return 0
    st = study_status(redis, args.study)
    if args.json:
        print(json.dumps(st, indent=2, default=str))
        return 0
    s = st["study"]
    print(
        f"{s['id']}  {s.get('name', '')}  status={s.get('status')}  backend={s.get('backend')}  "
        + " ".join(f"{k}={v}" for k, v in st["counts"].items())
    )
    print(_fmt_runs_table(st))
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    from workers.client import wait

    last = {}

    def tick(st):
        counts = st["counts"]
        if counts != last.get("c"):
            last["c"] = dict(counts)
            print(" ".join(f"{k}={v}" for k, v in counts.items()), flush=True)

    st = wait(_redis(), args.study, timeout=args.timeout, on_tick=tick)
    status = st["study"].get("status")
    print(f"study {args.study}: {status}")
    if status == "finished" and args.show:
        from workers.client import results

        summary = results(args.study)
        if summary:
            _print_ranking(summary)
    return 0 if status == "finished" else 1


def cmd_cancel(args: argparse.Namespace) -> int:
    from workers.client import cancel

    ids = cancel(_redis(), args.target, force=args.force)
    print(f"canceled {len(ids)} run(s)")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from workers.client import retry

    job = retry(_redis(), args.run)
    print(f"run {args.run} queued again (job {job})")
    return 0


def cmd_refine(args: argparse.Namespace) -> int:
    from core.artifacts import ArtifactStore, read_json
    from core.decision import proposal_text
    from workers.client import refine

    ids = refine(_redis(), args.study, force=args.force)
    decision = (read_json(ArtifactStore().study_dir(args.study) / "metrics.json") or {}).get("decision") or {}
    for reason in decision.get("reasons") or []:
        print(f"inconclusive: {reason}")
    print(f"queued {len(ids)} run(s): {proposal_text(decision['proposal'])}")
    print(f"the ranking updates when they finish: workbench wait {args.study}")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    import shutil

    from core.artifacts import ArtifactStore

    src = ArtifactStore().study_dir(args.study)
    if not (src / "metrics.json").is_file():
        print(f"error: study {args.study} has no results yet (`workbench status {args.study}`)", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copy2(f, out / f.name)
    import json

    _print_ranking(json.loads((out / "metrics.json").read_text()))
    print(f"\nwrote {out / 'metrics.json'}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.export import ExportError, export_mixture, push_export
    from core.normalize import DataError
    from core.sources import SourceError

    _quiet_libraries()
    try:
        done = export_mixture(args.study, args.mixture, args.size, args.format, args.out, seed=args.seed)
    except (ExportError, SourceError, DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    state = "as its run trained on them" if done.trained else "as its run will train on them (it has not finished)"
    print(f"wrote {done.rows:,} rows of {done.run.label} to {done.file}, {state}")
    if args.push:
        from huggingface_hub.errors import HfHubHTTPError

        try:
            url = push_export(done.folder, args.push, private=not args.public)
        except (ExportError, HfHubHTTPError, OSError) as err:
            print(f"error: pushing to {args.push} failed: {err}; the export is kept in {done.folder}", file=sys.stderr)
            return 1
        print(f"pushed to {url}")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from workers.client import reindex

    rebuilt = reindex(_redis())
    print(f"rebuilt {len(rebuilt)} study record(s) from the artifacts store")
    for sid in rebuilt:
        print(sid)
    return 0


def cmd_remote_run(args: argparse.Namespace) -> int:
    """A batch of runs inside a Hugging Face Job: prepared data from the results repo in, results out."""
    from workers.backends.hf_remote import remote_batch

    def out(line: str) -> None:
        print(line, flush=True)

    endpoint = (os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None
    try:
        outcome = remote_batch(args.repo, args.study, args.batch, endpoint, out=out)
    except Exception as err:  # the Job's log is all the worker sees: say what failed, exit non-zero
        print(f"error: batch {args.batch} failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        return 1
    counts = {s: list(outcome.values()).count(s) for s in ("finished", "failed", "skipped")}
    print(f"[workbench] batch {args.batch}: " + ", ".join(f"{n} {s}" for s, n in counts.items()), flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Data Curation Workbench: which candidate dataset is worth adding?",
        allow_abbrev=False,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_in_process_commands(sub)
    _add_service_commands(sub)
    _add_submit_command(sub)
    _add_prescreen_command(sub)
    _add_study_commands(sub)
    _add_remote_run_command(sub)
    return parser


def _add_in_process_commands(sub) -> None:
    """run and demo: a whole study in this process, no server."""
    p = sub.add_parser(
        "run", allow_abbrev=False, help="run a whole study in this process (no server) and write metrics.json"
    )
    p.add_argument("spec", help="study spec, YAML or JSON")
    p.add_argument("--out", help="output folder (default: the spec's output_dir, or out/<study id>)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", allow_abbrev=False, help="run the shipped offline demo study (no network needed)")
    p.add_argument("--fast", action="store_true", help="one seed, three small sizes: a few minutes on a laptop CPU")
    p.add_argument(
        "--model",
        choices=["builtin:tiny-lm", "builtin:minilm"],
        default="builtin:tiny-lm",
        help="builtin:minilm: the pretrained encoder with LoRA (catalog/demo_study_minilm.yaml: one seed, three sizes)",
    )
    p.add_argument("--out", help="output folder (default: out/demo or out/demo-fast)")
    p.set_defaults(func=cmd_demo)


def _add_service_commands(sub) -> None:
    """up, dashboard, health and worker: the long-running processes and their health check."""
    p = sub.add_parser(
        "up", allow_abbrev=False, help="start Redis (embedded unless REDIS_URL is set), a worker and the dashboard"
    )
    p.add_argument("--workers", type=int, default=1, help="local workers to start (default 1)")
    p.add_argument("--no-dashboard", dest="dashboard", action="store_false", help="do not start the dashboard")
    p.add_argument("--port", type=int, default=8501, help="dashboard port (default 8501)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser(
        "dashboard", allow_abbrev=False, help="start the dashboard alone against REDIS_URL (the compose `app` service)"
    )
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.add_argument("--address", help="address to listen on (default: all; 0.0.0.0 in a container)")
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser(
        "health",
        allow_abbrev=False,
        help="exit 0 when Redis answers and the artifacts folder is writable (container health check)",
    )
    p.add_argument(
        "--dashboard", metavar="URL", help="also require the dashboard at URL to answer, e.g. http://127.0.0.1:8501"
    )
    p.add_argument("--worker", action="store_true", help="also require a worker of this host to be registered")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser(
        "worker", allow_abbrev=False, help="run a worker against REDIS_URL (an operator runs one per GPU)"
    )
    p.add_argument("--queues", help="comma-separated queues (default: gpu,default)")
    p.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    p.add_argument("--name", help="worker name (default: RQ's)")
    p.set_defaults(func=cmd_worker)


def _add_submit_command(sub) -> None:
    """submit, with each backend's own options as flags."""
    from workers.backends.base import DEFAULT_BACKEND, backends

    p = sub.add_parser(
        "submit", allow_abbrev=False, help="validate a study spec and enqueue it; prints the study id last"
    )
    p.add_argument("spec")
    p.add_argument("--backend", choices=list(backends()), default=DEFAULT_BACKEND)
    p.add_argument("--user", help="who submits (recorded with the study)")
    p.add_argument("--run-timeout", type=int, default=6 * 3600, help="seconds one run may take (default 6 h)")
    p.add_argument("--prescreen", action="store_true", help="also enqueue the embedding pre-screen of its data")
    for backend in backends().values():
        for option in (o for o in backend.options if o.flag):
            default = f" (default {option.default})" if option.default else ""
            p.add_argument(option.flag, dest=option.name, help=f"{backend.label}: {option.help}{default}")
    p.set_defaults(func=cmd_submit)


def _add_prescreen_command(sub) -> None:
    p = sub.add_parser(
        "prescreen",
        allow_abbrev=False,
        help="rank a spec's candidates from sentence embeddings, before any training (a queued job; waits for it)",
    )
    p.add_argument("spec")
    p.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the job (default 3600)")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    p.set_defaults(func=cmd_prescreen)


def _add_study_commands(sub) -> None:
    """status, wait, cancel, retry, refine, results and reindex: studies already submitted."""
    p = sub.add_parser("status", allow_abbrev=False, help="studies, or one study's runs")
    p.add_argument("study", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("wait", allow_abbrev=False, help="wait for a study to finish")
    p.add_argument("study")
    p.add_argument("--timeout", type=float, help="seconds (default: no limit)")
    p.add_argument("--no-show", dest="show", action="store_false", help="do not print the ranking")
    p.set_defaults(func=cmd_wait)

    p = sub.add_parser("cancel", allow_abbrev=False, help="cancel a study or a run")
    p.add_argument("target", help="study id or run id")
    p.add_argument("--force", action="store_true", help="also stop the work horse at once (a hung run)")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("retry", allow_abbrev=False, help="queue a failed or canceled run again")
    p.add_argument("run")
    p.set_defaults(func=cmd_retry)

    p = sub.add_parser(
        "refine",
        allow_abbrev=False,
        help="an inconclusive study: run the top two candidates at twice the largest size, then rank again",
    )
    p.add_argument("study")
    p.add_argument("--force", action="store_true", help="refine even when the decision is settled")
    p.set_defaults(func=cmd_refine)

    p = sub.add_parser(
        "results", allow_abbrev=False, help="write a finished study's metrics.json and charts to a folder"
    )
    p.add_argument("study")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_results)

    p = sub.add_parser(
        "export",
        allow_abbrev=False,
        help="write the exact mixture a run trained on (rows in order, each with its source) to a folder",
    )
    p.add_argument("study")
    p.add_argument("--mixture", required=True, help="a candidate's name, or 'baseline' for D0 alone")
    p.add_argument("--size", required=True, type=int, help="the run's size in rows")
    p.add_argument("--seed", type=int, help="the run's seed (default: the study's first)")
    p.add_argument("--format", choices=["verifiers", "hf"], default="verifiers", help="JSON lines or Parquet")
    p.add_argument("--out", required=True, help="the folder to write (laid out like a Hub dataset repo)")
    p.add_argument("--push", metavar="ORG/NAME", help="also upload the folder to this Hub dataset repo")
    p.add_argument("--public", action="store_true", help="create the pushed repo public (default: private)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("reindex", allow_abbrev=False, help="rebuild Redis records from the artifacts store")
    p.set_defaults(func=cmd_reindex)


def _add_remote_run_command(sub) -> None:
    """remote-run: what a Hugging Face Job runs."""
    p = sub.add_parser(
        "remote-run",
        allow_abbrev=False,
        help="(inside a Hugging Face Job) train a batch of runs from the results repo and upload their results",
    )
    p.add_argument("--repo", required=True, help="results dataset repo, e.g. org/workbench-results")
    p.add_argument("--study", required=True)
    p.add_argument("--batch", required=True, help="the batch's id: its runs are listed in the results repo")
    p.set_defaults(func=cmd_remote_run)


def main(argv: list[str] | None = None) -> int:
    from core.normalize import DataError
    from core.sources import SourceError
    from core.spec import SpecError

    args = build_parser().parse_args(argv)
    _quiet_libraries()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except (SpecError, DataError, SourceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ConnectionError, KeyError, ValueError, TimeoutError, FileNotFoundError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished runs are kept in the artifacts store and will not be run again", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
