"""`make bench` (`python -m bench.run [--quick]`): the product under load, measured in one run.

For each shape, `embedded` (one `serve --role all` process on SQLite) and `production` (a
`--role bridge` and two `--role web` processes on PostgreSQL and Redis), against load generated
in separate processes (the feed server, the simulated Asterisk, and this process holding the
operators' consoles):

- `ami_events_per_second`: the bridge's ingest of `ami-burst-40.raw` (K renumbered copies, sent
  as fast as the socket allows by `bench.amifeed` in its own process), from the first byte sent
  to the moment every call of the burst is a row in `calls`; beside it
  `ami_parse_ceiling_events_per_second` (a bare asyncio `readuntil` splitter on the same bytes,
  same kind of socket, same run) and their ratio.
- `calls_per_second_sustained`: arrival rates in steps; a step passes when every call is
  recorded, the bridge's event lag (its `/health`: receipt time - Asterisk `Timestamp`, sampled
  twice a second) stays under 1 s and the p99 screen pop under 100 ms. The highest passing step.
- `screen_pop_ms`: simulated AgentCalled `Timestamp` -> the operator's websocket receives the pop,
  with all consoles connected, at 25 calls/s (the 25 calls/s step).
- `agi_command_ms`: the IVR's turnaround per FastAGI command (see bench/sim.py) while about 200
  IVR sessions are in progress.
- `case_write_lag_ms`: `calls.recorded_at - calls.ended_at` of the 25 calls/s step.
- `rss_mb`: each product process's resident memory with 1,000 calls in progress.
- `prompts`: the IVR prompts: speech of a 25-word prompt, publishing 40 prompts x 2 languages
  new and unchanged (bench/prompts.py).

Prints one JSON object on stdout and saves it under bench/results/<timestamp>.json. Only
127.0.0.1 is used; every loop and wait is bounded. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select, update

from bench import prompts as prompts_bench
from bench import stack as S
from bench.amifeed import bare_splitter_rate, stream
from contactcenter import db

ROOT = Path(__file__).resolve().parent.parent
BURST = ROOT.parent / "shared" / "asterisk-transcripts" / "ami-burst-40.raw"
if not BURST.exists():
    BURST = Path("/work/shared/asterisk-transcripts/ami-burst-40.raw")
RESULTS = ROOT / "bench" / "results"

TARGETS = {
    "ami_ratio_min": 0.5, "calls_per_second_sustained_min": 50, "screen_pop_ms_p99_max": 50,
    "agi_command_ms_p99_max": 10, "case_write_lag_ms_p99_max": 500, "rss_mb_single_max": 300,
}


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN when there is no sample (printed as null)."""
    if not values:
        return math.nan
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))], 3)


def dist(values: list[float], **extra: Any) -> dict[str, Any]:
    return {"p50": pct(values, 50), "p99": pct(values, 99), "n": len(values), **extra}


class Plan:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.copies = 10 if quick else 40  # burst-40 copies: ~49,000 / ~196,000 events
        self.consoles = 500
        self.step_seconds = 5.0 if quick else 60.0
        self.steps = [25.0, 50.0] if quick else [25.0, 50.0, 75.0, 100.0, 150.0, 200.0]
        self.agi_rate, self.agi_prewait = 55.0, 3.5  # ~200 sessions in the IVR
        self.agi_seconds = 8.0 if quick else 20.0
        self.rss_calls = 1000


# --- the store -----------------------------------------------------------------------------------


async def count_calls(url: str, prefix: str | None = None, engine: Any = None) -> int:
    from contactcenter.cases.models import Call

    own = engine is None
    engine = engine or db.make_engine(url)
    try:
        async with engine.connect() as conn:
            q = select(func.count()).select_from(Call)
            if prefix is not None:
                q = q.where(Call.caller_number.like(f"{prefix}%"))
            return int((await conn.execute(q)).scalar_one())
    finally:
        if own:
            await engine.dispose()


async def write_lags(url: str, prefix: str) -> list[float]:
    from contactcenter.cases.models import Call

    engine = db.make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(Call.recorded_at, Call.ended_at).where(
                Call.caller_number.like(f"{prefix}%")))).all()
    finally:
        await engine.dispose()

    def utc(d: datetime) -> datetime:
        return d if d.tzinfo else d.replace(tzinfo=UTC)

    return [(utc(r) - utc(e)).total_seconds() * 1000 for r, e in rows]


async def storm_settings(url: str) -> None:
    """No after-call work in the bench: operators take the next call at once (wrap-up would
    pause them through AMI for 30 s and the queue would run out of operators, not the product)."""
    from contactcenter.queues.models import Queue

    engine = db.make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(Queue).values(wrapup_seconds=0))
    finally:
        await engine.dispose()


# --- phases --------------------------------------------------------------------------------------


async def ami_ingest(shape: str, plan: Plan, workdir: Path) -> dict[str, Any]:
    body, frames = stream(BURST, plan.copies)
    calls = 40 * plan.copies
    url = await S.create_store("sqlite" if shape == "embedded" else "pg", workdir / "ingest")
    feed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.amifeed", str(BURST), str(plan.copies), cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    st: S.Stack | None = None
    try:
        assert feed.stdout is not None and feed.stdin is not None
        port = int(json.loads(await asyncio.wait_for(feed.stdout.readline(), 30))["port"])
        st = await S.start_shape(shape, url, port, workdir / "ingest")
        sent = json.loads(await asyncio.wait_for(feed.stdout.readline(), 60))
        deadline = time.monotonic() + 120
        recorded = 0
        engine = db.make_engine(url)  # one connection pool for the polling (10 ms steps)
        try:
            while time.monotonic() < deadline:
                recorded = await count_calls(url, engine=engine)
                if recorded >= calls:
                    break
                await asyncio.sleep(0.01)
            done = time.time()
        finally:
            await engine.dispose()
        if recorded < calls:
            raise RuntimeError(f"ingest: {recorded} of {calls} calls recorded in 120 s")
        rate = frames / (done - sent["sent_at"])
    finally:
        if st is not None:
            S.stop(st)
        if feed.stdin is not None:
            feed.stdin.close()
        try:
            await asyncio.wait_for(feed.wait(), 10)
        except TimeoutError:
            feed.kill()
            await feed.wait()
        await S.drop_store(url)
    ceiling = await bare_splitter_rate(body, frames)
    say(f"{shape}: ingest {rate:,.0f} events/s, ceiling {ceiling:,.0f} ({frames} events)")
    return {"ami_events_per_second": round(rate), "ami_parse_ceiling_events_per_second":
            round(ceiling), "ami_ratio": round(rate / ceiling, 3), "ami_events": frames,
            "ami_calls": calls}


class Run:
    """One shape against the simulator, with all consoles connected."""

    def __init__(self, shape: str, plan: Plan, workdir: Path) -> None:
        self.shape, self.plan, self.workdir = shape, plan, workdir
        self.url = ""
        self.sim: S.SimProcess | None = None
        self.stack: S.Stack | None = None
        self.consoles = S.Consoles()
        self.http: aiohttp.ClientSession | None = None
        self.prefixes = 0

    async def __aenter__(self) -> Run:
        self.url = await S.create_store("sqlite" if self.shape == "embedded" else "pg",
                                        self.workdir)
        users = await S.seed(self.url, self.plan.consoles)
        await storm_settings(self.url)
        agi_port = S.free_port()
        self.sim = S.SimProcess(agi_port, self.plan.consoles,
                                max_seconds=600 if self.plan.quick else 3600)
        ami_port = await self.sim.start()
        self.stack = await _start_with_agi(self.shape, self.url, ami_port, agi_port,
                                           self.workdir)
        self.http = aiohttp.ClientSession()
        t0 = time.monotonic()
        await self.consoles.connect(users, self.stack.webs)
        say(f"{self.shape}: {len(self.consoles.sockets)} consoles connected in "
            f"{time.monotonic() - t0:.1f}s ({self.consoles.by_web})")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consoles.close()
        if self.http is not None:
            await self.http.close()
        if self.stack is not None:
            S.stop(self.stack)
        if self.sim is not None:
            await self.sim.close()
        if self.url:
            await S.drop_store(self.url)

    def prefix(self) -> str:
        self.prefixes += 1
        return f"55{self.prefixes:02d}"

    async def lag(self) -> float:
        assert self.http is not None and self.stack is not None
        body = await S.health(self.stack.bridge, self.http)
        servers = body["parts"]["ami"]["servers"]
        lags = [s.get("last_event_lag_s") or 0.0 for s in servers.values()]
        return max(lags) if lags else 0.0

    async def drain(self, timeout: float) -> int:
        """Calls still in progress after waiting up to `timeout` for them to end; -1 when the
        simulator was too loaded to say (the step fails, the run goes on)."""
        assert self.sim is not None
        deadline = time.monotonic() + timeout
        left = -1
        while time.monotonic() < deadline:
            try:
                stats = await self.sim.ask(cmd="stats", samples=False,
                                           timeout=max(1.0, deadline - time.monotonic()))
            except TimeoutError:
                break
            left = int(stats["in_progress"])
            if not left:
                break
            await asyncio.sleep(0.5)
        return left

    async def step(self, rate: float, seconds: float, *, talk: float = 1.0) -> dict[str, Any]:
        """Calls at `rate` for `seconds`: pops, lag, and whether every call got its row."""
        assert self.sim is not None
        prefix = self.prefix()
        before = await self.sim.ask(cmd="stats", reset=True)
        self.consoles.pops_ms = []
        await self.sim.ask(cmd="calls", rate=rate, seconds=seconds, prefix=prefix,
                           prewait=0.5, talk=talk, patience=120)
        lags: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await asyncio.sleep(0.5)
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError):
                lags.append(await self.lag())
        left = await self.drain(60)
        after = await self.sim.ask(cmd="stats", samples=False, timeout=120)
        started = after["started"] - before["started"]
        deadline = time.monotonic() + 30
        recorded = await count_calls(self.url, prefix)
        while recorded < started and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            recorded = await count_calls(self.url, prefix)
        pops = list(self.consoles.pops_ms)
        out = {
            "rate": rate, "seconds": seconds, "calls": started, "recorded": recorded,
            "still_in_progress": left, "max_event_lag_s": round(max(lags, default=0.0), 3),
            "screen_pop_ms": dist(pops), "simulator_behind": after["calls_behind"]
            - before["calls_behind"], "prefix": prefix,
        }
        out["passed"] = bool(
            left == 0 and recorded >= started > 0 and out["max_event_lag_s"] < 1.0 and pops
            and pct(pops, 99) < 100
        )
        say(f"{self.shape}: {rate:g} calls/s x {seconds:g}s: {recorded}/{started} recorded, "
            f"lag max {out['max_event_lag_s']}s, pop p99 {pct(pops, 99)} ms "
            f"-> {'pass' if out['passed'] else 'FAIL'}")
        return out

    async def agi(self) -> dict[str, Any]:
        """Callers who take their time in the IVR, so ~200 sessions are in progress."""
        assert self.sim is not None
        plan = self.plan
        await self.sim.ask(cmd="stats", reset=True, timeout=120)
        await self.sim.ask(cmd="calls", rate=plan.agi_rate, seconds=plan.agi_seconds,
                           prefix=self.prefix(), prewait=plan.agi_prewait, talk=1.0,
                           patience=120)
        in_ivr: list[int] = []
        samples: list[float] = []
        warm = plan.agi_prewait + 2.0  # sessions build up for the first seconds
        t0 = time.monotonic()
        while time.monotonic() - t0 < plan.agi_seconds:
            await asyncio.sleep(0.5)
            stats = await self.sim.ask(cmd="stats", reset=True)
            if time.monotonic() - t0 >= warm:
                samples.extend(stats["agi_ms"])
                in_ivr.append(stats["in_ivr"])
        await self.drain(60)
        res = dist(samples, ivr_sessions_median=sorted(in_ivr)[len(in_ivr) // 2] if in_ivr
                   else 0, ivr_sessions_max=max(in_ivr, default=0))
        say(f"{self.shape}: AGI turnaround p50 {res['p50']} p99 {res['p99']} ms with "
            f"~{res['ivr_sessions_median']} IVR sessions")
        return res

    async def rss(self) -> dict[str, Any]:
        """1,000 calls in progress (operators talk for a minute, the rest wait in the queue)."""
        assert self.sim is not None and self.stack is not None and self.http is not None
        n = self.plan.rss_calls
        await self.sim.ask(cmd="calls", rate=200, seconds=n / 200, prefix=self.prefix(),
                           prewait=0.5, talk=90.0, patience=300)
        deadline = time.monotonic() + 90
        open_calls = 0
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError):
                body = await S.health(self.stack.bridge, self.http)
                open_calls = int(body["parts"]["ami"]["open_calls"])
            if open_calls >= n:
                break
        out: dict[str, Any] = {p.name: p.rss_mb() for p in self.stack.procs}
        say(f"{self.shape}: RSS {out} MB with {open_calls} calls in progress")
        return {"rss_mb": out, "calls_in_progress": open_calls}


async def _start_with_agi(shape: str, url: str, ami_port: int, agi_port: int,
                          workdir: Path) -> S.Stack:
    st = S.Stack(shape, url, agi_port)
    common: dict[str, Any] = {"ami_port": ami_port, "agi_port": agi_port, "workdir": workdir}
    if shape == "embedded":
        st.procs.append(S.serve("all", "all", url, **common))
    else:
        kw = {**common, "redis_url": S.REDIS_URL, "channel": f"cc:bench:{os.getpid()}"}
        st.procs += [S.serve("bridge", "bridge", url, **kw), S.serve("web1", "web", url, **kw),
                     S.serve("web2", "web", url, **kw)]
    try:
        await S.wait_healthy(st.procs)
    except BaseException:
        S.stop(st)
        raise
    return st


async def shape_run(shape: str, plan: Plan, workdir: Path) -> dict[str, Any]:
    (workdir / "ingest").mkdir(parents=True, exist_ok=True)
    out = await ami_ingest(shape, plan, workdir)
    async with Run(shape, plan, workdir) as run:
        steps = []
        for rate in plan.steps:
            steps.append(await run.step(rate, plan.step_seconds))
            if not steps[-1]["passed"]:
                break
        # A failed step can leave thousands of calls queued in the simulator: let them end
        # before the AGI and memory phases, which need a quiet system to mean anything.
        out["calls_left_after_steps"] = await run.drain(300)
        at25 = steps[0]
        out["calls_per_second_sustained"] = max(
            (s["rate"] for s in steps if s["passed"]), default=0.0)
        out["sustained_steps"] = steps
        out["screen_pop_ms"] = {**at25["screen_pop_ms"], "consoles": len(run.consoles.sockets),
                                "calls_per_second": at25["rate"]}
        out["case_write_lag_ms"] = dist(await write_lags(run.url, at25["prefix"]))
        out["agi_command_ms"] = await run.agi()
        out.update(await run.rss())
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--quick", action="store_true", help="short steps (a couple of minutes)")
    parser.add_argument("--shape", choices=("embedded", "production", "prompts"),
                        action="append",
                        help="only this part (default: embedded, production and prompts: the "
                             "IVR prompts' speech and publish, bench/prompts.py)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)
    plan = Plan(args.quick)
    started = time.time()
    result: dict[str, Any] = {
        "quick": plan.quick, "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "targets": TARGETS,
    }
    with tempfile.TemporaryDirectory(prefix="ccbench-") as tmp:
        for shape in args.shape or ["embedded", "production", "prompts"]:
            say(f"{shape}: starting")
            if shape == "prompts":
                result[shape] = await prompts_bench.run(Path(tmp), rounds=3 if plan.quick else 5)
                continue
            result[shape] = await shape_run(shape, plan, Path(tmp) / shape)
    result["duration_s"] = round(time.time() - started, 1)
    result = _clean(result)
    text = json.dumps(result, indent=2)
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}.json").write_text(
            text + "\n")
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
