"""What every benchmark shares: the machine description, a table printer and the result file."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# 1/5/15-minute load averages when the benchmark started (this module is imported first) and when
# it wrote its result: the machine is shared, so these say how busy it was.
LOAD_AT_START = _loadavg()


def machine() -> dict:
    """nproc, CPU model, RAM and load: enough to tell whether two result files are comparable."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": ram_gib,
        "load_avg_at_start": LOAD_AT_START,
        "load_avg_at_end": _loadavg(),
        "python": platform.python_version(),
    }


def versions(*names: str) -> dict:
    out = {}
    for name in names:
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "?")
        except ImportError:
            out[name] = None
    return out


def print_table(rows: list[list], header: list[str]) -> None:
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, r in enumerate(cells):
        print("  ".join(c.rjust(w) if n and i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(v) -> str:
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.3g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def write_result(name: str, payload: dict, command: str | None = None) -> Path:
    """bench/results/<name>.json with the command, the date and the machine added."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "command": command or f"python -m bench.{name}",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **payload,
    }
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"\nwrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return path


class Timer:
    """`with Timer() as t: ...; t.seconds`, on perf_counter."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


def setup_env(scratch_default: str = "/tmp/workbench-bench") -> Path:
    """Offline, with WORKBENCH_HOME under a scratch folder unless the caller set one."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    home = Path(os.environ.setdefault("WORKBENCH_HOME", str(Path(scratch_default) / "var")))
    home.mkdir(parents=True, exist_ok=True)
    return home


def scratch_dir(name: str) -> Path:
    """A scratch folder for one benchmark's files, beside WORKBENCH_HOME (never inside the repo)."""
    root = Path(
        os.environ.get("WORKBENCH_BENCH_SCRATCH") or Path(os.environ["WORKBENCH_HOME"]).parent / "bench-scratch"
    )
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def python() -> str:
    return sys.executable


def own_redis_and_artifacts(name: str):
    """A benchmark's clean scratch folder with a redis-server of its own: (server, redis client, artifacts
    folder, logs folder). Sets ARTIFACTS_DIR, REDIS_URL and 1 torch thread for the workers it starts."""
    import shutil

    from redis import Redis

    from workers.redis_server import EmbeddedRedis

    scratch = scratch_dir(name)
    for sub in ("artifacts", "redis", "logs"):
        shutil.rmtree(scratch / sub, ignore_errors=True)
    artifacts_dir, logs = scratch / "artifacts", scratch / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    os.environ["ARTIFACTS_DIR"] = str(artifacts_dir)
    os.environ["WORKBENCH_TORCH_THREADS"] = "1"
    os.environ.setdefault("WORKBENCH_USER", "bench@example.com")
    server = EmbeddedRedis(scratch / "redis").start()
    os.environ["REDIS_URL"] = server.url
    return server, Redis.from_url(server.url), artifacts_dir, logs
