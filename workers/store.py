"""The job store: study and run records, progress and events, in Redis.

Redis holds live state; the artifacts store on disk holds finished results and stays the source of
truth (`reindex` rebuilds these records from it). Keys, all under the `wb:` prefix:

    wb:studies                 zset  study id -> submitted time
    wb:study:<sid>             hash  the study record (spec YAML, status, who, when, backend, ...)
    wb:study:<sid>:runs        list  run ids in plan order
    wb:run:<rid>               hash  the run record (arm, size, seed, key, status, phase, progress...)
    wb:run:<rid>:events        list  bounded event log (loss points, log lines), newest last
    wb:alive:<rid>             str   liveness of a running run, refreshed by its worker (TTL)
    wb:submitting              set   studies whose submit has not finished enqueueing
    wb:submit-lock:<sid>       str   held by the process enqueueing the study (TTL): the submitter,
                                     or a worker finishing the submit of one that died

A run id is `<sid>-r<n>` (its place in the plan), so ids are short and sort in plan order. Reads of
many records go through one pipeline: one round trip for a page of 10k runs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis import Redis

PREFIX = "wb:"
EVENTS_KEEP = 500
# Seconds a running run stays "alive" without a refresh from its worker; a killed worker's run is
# requeued about 1.5x this after it went silent. Set the same WORKBENCH_ALIVE_TTL on every worker.
ALIVE_TTL = max(2, int(os.environ.get("WORKBENCH_ALIVE_TTL") or 20))

STATUSES = ("queued", "running", "finished", "failed", "canceled")
LIVE = ("queued", "running")
TERMINAL = ("finished", "failed", "canceled")


# One page of a study's runs (JobStore.study_runs_page). ARGV: prefix, statuses (JSON list), arm,
# lower-cased search text, page, page size. Empty tables are encoded as JSON objects by cjson, so
# the caller treats `arms`, `runs` and `stale` that are {} as empty lists.
_PAGE_SCRIPT = """
local prefix, want, arm, text = ARGV[1], cjson.decode(ARGV[2]), ARGV[3], ARGV[4]
local page, size = tonumber(ARGV[5]), tonumber(ARGV[6])
local wanted = {}
for _, s in ipairs(want) do wanted[s] = true end
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
local counts, arms, seen, matched, stale = {}, {}, {}, {}, {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', prefix .. 'run:' .. id, 'status', 'arm', 'worker', 'host', 'phase', 'error')
  local status = f[1] or 'queued'
  counts[status] = (counts[status] or 0) + 1
  local a = f[2] or ''
  if not seen[a] then seen[a] = true; arms[#arms + 1] = a end
  if status == 'running' and redis.call('EXISTS', prefix .. 'alive:' .. id) == 0 then stale[#stale + 1] = id end
  local keep = (#want == 0 or wanted[status]) and (arm == '' or a == arm)
  if keep and text ~= '' then
    local who = f[3] or f[4] or ''
    local hay = string.lower(id .. ' ' .. a .. ' ' .. who .. ' ' .. (f[5] or '') .. ' ' .. (f[6] or ''))
    keep = string.find(hay, text, 1, true) ~= nil
  end
  if keep then matched[#matched + 1] = id end
end
local pages = math.max(1, math.ceil(#matched / size))
page = math.min(math.max(1, page), pages)
local runs = {}
for i = (page - 1) * size + 1, math.min(page * size, #matched) do
  local flat = redis.call('HGETALL', prefix .. 'run:' .. matched[i])
  local h = {}
  for j = 1, #flat, 2 do h[flat[j]] = flat[j + 1] end
  runs[#runs + 1] = h
end
return cjson.encode({total = #ids, counts = counts, arms = arms, matched = #matched, page = page,
                     runs = runs, stale = stale})
"""


def _k(*parts: str) -> str:
    return PREFIX + ":".join(parts)


def _decode(h: dict) -> dict:
    out: dict[str, Any] = {}
    for k, v in h.items():
        k = k.decode() if isinstance(k, bytes) else k
        v = v.decode() if isinstance(v, bytes) else v
        out[k] = v
    for field in ("metrics", "flags"):
        if isinstance(out.get(field), str):
            try:
                out[field] = json.loads(out[field])
            except json.JSONDecodeError:
                pass
    for field in ("size", "seed", "step", "total", "attempts", "n_runs", "index", "refined_runs", "refined_at_size"):
        if out.get(field) not in (None, ""):
            try:
                out[field] = int(out[field])
            except ValueError:
                pass
    for field in ("loss", "submitted_at", "started_at", "finished_at", "updated_at", "progress"):
        if out.get(field) not in (None, ""):
            try:
                out[field] = float(out[field])
            except ValueError:
                pass
    return out


def _encode(fields: dict) -> dict:
    out = {}
    for k, v in fields.items():
        if v is None:
            continue
        if isinstance(v, (dict, list)):
            v = json.dumps(v)
        elif isinstance(v, bool):
            v = int(v)
        out[k] = v
    return out


@dataclass
class JobStore:
    redis: Redis

    # -- studies -------------------------------------------------------------------------------

    def create_study(self, study_id: str, record: dict, runs: list[dict], *, submitting: bool = False) -> None:
        """Write a study and its run records in one transaction.

        With `submitting`, the study is also listed in `wb:submitting` until `finish_submit`: a
        submitter that dies before it has enqueued everything leaves a study a worker can finish.
        """
        now = time.time()
        with self.redis.pipeline() as p:
            if submitting:
                p.sadd(_k("submitting"), study_id)
            p.hset(
                _k("study", study_id),
                mapping=_encode({**record, "id": study_id, "submitted_at": now, "n_runs": len(runs)}),
            )
            p.zadd(_k("studies"), {study_id: now})
            p.delete(_k("study", study_id, "runs"))
            if runs:
                p.rpush(_k("study", study_id, "runs"), *[r["id"] for r in runs])
            for r in runs:
                p.hset(_k("run", r["id"]), mapping=_encode({**r, "study_id": study_id, "updated_at": now}))
            p.execute()

    def add_runs(self, study_id: str, runs: list[dict]) -> None:
        """Append run records to an existing study (a refinement), in one transaction."""
        now = time.time()
        with self.redis.pipeline() as p:
            p.rpush(_k("study", study_id, "runs"), *[r["id"] for r in runs])
            for r in runs:
                p.hset(_k("run", r["id"]), mapping=_encode({**r, "study_id": study_id, "updated_at": now}))
            p.hincrby(_k("study", study_id), "n_runs", len(runs))
            p.execute()

    def take_submit_lock(self, study_id: str, owner: str, ttl: int) -> bool:
        return bool(self.redis.set(_k("submit-lock", study_id), owner, nx=True, ex=ttl))

    def submitting(self) -> list[str]:
        return sorted(i.decode() if isinstance(i, bytes) else i for i in self.redis.smembers(_k("submitting")))

    def finish_submit(self, study_id: str) -> None:
        """The study's jobs are all enqueued: 'submitting' becomes 'queued' (unless a worker moved it on)."""
        self.redis.eval(
            "if redis.call('HGET', KEYS[1], 'status') == 'submitting' then redis.call('HSET', KEYS[1], "
            "'status', 'queued') end "
            "redis.call('SREM', KEYS[2], ARGV[1]) redis.call('DEL', KEYS[3]) return 1",
            3,
            _k("study", study_id),
            _k("submitting"),
            _k("submit-lock", study_id),
            study_id,
        )

    def study(self, study_id: str) -> dict | None:
        h = self.redis.hgetall(_k("study", study_id))
        return _decode(h) if h else None

    def update_study(self, study_id: str, **fields) -> None:
        self.redis.hset(_k("study", study_id), mapping=_encode(fields))

    def study_ids(self, newest_first: bool = True) -> list[str]:
        ids = self.redis.zrevrange(_k("studies"), 0, -1) if newest_first else self.redis.zrange(_k("studies"), 0, -1)
        return [i.decode() if isinstance(i, bytes) else i for i in ids]

    def studies(self) -> list[dict]:
        ids = self.study_ids()
        with self.redis.pipeline(transaction=False) as p:
            for sid in ids:
                p.hgetall(_k("study", sid))
            return [_decode(h) for h in p.execute() if h]

    def run_ids(self, study_id: str) -> list[str]:
        return [
            i.decode() if isinstance(i, bytes) else i for i in self.redis.lrange(_k("study", study_id, "runs"), 0, -1)
        ]

    def delete_study(self, study_id: str) -> None:
        ids = self.run_ids(study_id)
        with self.redis.pipeline() as p:
            for rid in ids:
                p.delete(_k("run", rid), _k("run", rid, "events"), _k("alive", rid))
            p.delete(_k("study", study_id), _k("study", study_id, "runs"), _k("submit-lock", study_id))
            p.zrem(_k("studies"), study_id)
            p.srem(_k("submitting"), study_id)
            p.execute()

    # -- runs ----------------------------------------------------------------------------------

    def run(self, run_id: str) -> dict | None:
        h = self.redis.hgetall(_k("run", run_id))
        return _decode(h) if h else None

    def runs(self, run_ids: Iterable[str]) -> list[dict]:
        """Many run records in one round trip."""
        ids = list(run_ids)
        with self.redis.pipeline(transaction=False) as p:
            for rid in ids:
                p.hgetall(_k("run", rid))
            return [_decode(h) for h in p.execute() if h]

    def study_runs(self, study_id: str) -> list[dict]:
        """A study's runs: the id list and every record, in one round trip (a server-side script).

        The script returns the records as one JSON string (Redis' bundled cjson), not as nested
        multi-bulk replies: redis-py parses those in Python, about 30 bulk strings per run (10k
        runs: ~0.7 s, against ~0.25 s this way on a busy 2-core box).
        """
        raw = self._study_runs_script(keys=[_k("study", study_id, "runs")], args=[PREFIX + "run:"])
        return [_decode(h) for h in json.loads(raw)]

    @property
    def _study_runs_script(self):
        if not hasattr(self, "_script"):
            self._script = self.redis.register_script(
                """
                local ids = redis.call('LRANGE', KEYS[1], 0, -1)
                local out = {}
                for _, id in ipairs(ids) do
                  local flat = redis.call('HGETALL', ARGV[1] .. id)
                  if #flat > 0 then
                    local h = {}
                    for j = 1, #flat, 2 do h[flat[j]] = flat[j + 1] end
                    out[#out + 1] = h
                  end
                end
                if #out == 0 then return '[]' end
                return cjson.encode(out)
                """
            )
        return self._script

    def study_runs_page(
        self,
        study_id: str,
        *,
        statuses: list[str] | None = None,
        arm: str | None = None,
        search: str = "",
        page: int = 1,
        page_size: int = 200,
    ) -> dict:
        """One page of a study's runs, filtered inside Redis, with what the Jobs page shows around it.

        Returns total, counts (by status, all runs), arms, matched (runs passing the filters), page
        (clamped to the last), runs (that page's records, in plan order) and stale (running runs
        whose liveness key expired, any page). The script reads five fields of each run and whole
        records for one page only: at 10k runs a fraction of `study_runs`' cost (docs/BENCHMARKS.md §6).
        """
        args = [PREFIX, json.dumps(list(statuses or [])), arm or "", (search or "").strip().lower(), page, page_size]
        raw = self._page_script(keys=[_k("study", study_id, "runs")], args=args)
        out = json.loads(raw)
        out["runs"] = [_decode(h) for h in out["runs"] or []]
        out["arms"] = sorted(out["arms"] or [])
        out["stale"] = list(out["stale"] or [])
        out["counts"] = {s: int((out["counts"] or {}).get(s, 0)) for s in STATUSES}
        return out

    @property
    def _page_script(self):
        if not hasattr(self, "_page"):
            self._page = self.redis.register_script(_PAGE_SCRIPT)
        return self._page

    def study_run_counts(self, study_ids: list[str]) -> dict[str, dict[str, int]]:
        """{study id: {run status: n}} for many studies in one pipeline, counted inside Redis."""
        script = self.redis.register_script(
            """
            local ids = redis.call('LRANGE', KEYS[1], 0, -1)
            local counts = {}
            for _, id in ipairs(ids) do
              local s = redis.call('HGET', ARGV[1] .. id, 'status') or 'queued'
              counts[s] = (counts[s] or 0) + 1
            end
            local flat = {}
            for k, v in pairs(counts) do flat[#flat + 1] = k; flat[#flat + 1] = v end
            return flat
            """
        )
        with self.redis.pipeline(transaction=False) as p:
            for sid in study_ids:
                script(keys=[_k("study", sid, "runs")], args=[PREFIX + "run:"], client=p)
            replies = p.execute()
        out = {}
        for sid, flat in zip(study_ids, replies):
            counts = {s: 0 for s in STATUSES}
            for k, v in zip(flat[0::2], flat[1::2]):
                counts[k.decode() if isinstance(k, bytes) else str(k)] = int(v)
            out[sid] = counts
        return out

    def update_run(self, run_id: str, **fields) -> None:
        fields["updated_at"] = time.time()
        self.redis.hset(_k("run", run_id), mapping=_encode(fields))

    def set_run_status(self, run_id: str, status: str, **fields) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = time.time()
        if status == "running":
            fields.setdefault("started_at", now)
        if status in TERMINAL:
            fields.setdefault("finished_at", now)
        self.update_run(run_id, status=status, **fields)

    def progress(self, run_id: str, phase: str, step: int, total: int, loss: float | None) -> None:
        with self.redis.pipeline(transaction=False) as p:
            fields = {"phase": phase, "step": step, "total": total, "updated_at": time.time()}
            if loss is not None:
                fields["loss"] = loss
            p.hset(_k("run", run_id), mapping=_encode(fields))
            if loss is not None and phase == "training":
                p.rpush(
                    _k("run", run_id, "events"),
                    json.dumps({"t": time.time(), "kind": "loss", "step": step, "loss": loss}),
                )
                p.ltrim(_k("run", run_id, "events"), -EVENTS_KEEP, -1)
            p.set(_k("alive", run_id), "1", ex=ALIVE_TTL)
            p.execute()

    def log(self, run_id: str, message: str, kind: str = "log") -> None:
        with self.redis.pipeline(transaction=False) as p:
            p.rpush(_k("run", run_id, "events"), json.dumps({"t": time.time(), "kind": kind, "message": message}))
            p.ltrim(_k("run", run_id, "events"), -EVENTS_KEEP, -1)
            p.execute()

    def events(self, run_id: str, last: int = EVENTS_KEEP) -> list[dict]:
        return [json.loads(e) for e in self.redis.lrange(_k("run", run_id, "events"), -last, -1)]

    def touch_alive(self, run_id: str) -> None:
        self.redis.set(_k("alive", run_id), "1", ex=ALIVE_TTL)

    def is_alive(self, run_id: str) -> bool:
        return bool(self.redis.exists(_k("alive", run_id)))

    def clear_alive(self, run_id: str) -> None:
        self.redis.delete(_k("alive", run_id))

    # -- summaries -----------------------------------------------------------------------------

    def counts(self, study_id: str) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for r in self.study_runs(study_id):
            counts[r.get("status", "queued")] = counts.get(r.get("status", "queued"), 0) + 1
        return counts
