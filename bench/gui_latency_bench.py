"""How long the GUI thread stalls while pulls arrive and the agent clicks, over 100,000 tickets.

Drives the real :class:`~agentdesk.ui.shell.main_window.MainWindow` (queue, ticket panel, contact
panel, timer, sync bridge) attached to a replica of 100,000 open tickets, in a process of its
own (the replica is built first, by the generator of ``tests/ui/queue_fixtures.py``, as
``bench/queue_bench.py`` does). While it runs:

* pulls: a feeder thread stands in for the sync thread: it parses pull pages of 1,000 changed
  tickets (subject, tier) from the server's JSON as the API client does, applies them with
  :meth:`Replica.apply_pull`, then tells the engine's page observers, so the sync bridge
  delivers them to the window exactly as after a real pull. No server: the figure is the
  desktop's, not the network's (the pages' bytes are made before the measurement; until stop 22
  each page was made during it from an ORM read, ``--feeder orm``);
* clicks: every ``CLICK_EVERY`` seconds the agent clicks a visible row of the queue (the ticket
  and contact panels and the timer follow it), and the next time "Assign to me" when it is
  enabled: a mutation of the replica on the GUI thread, which queues behind a pull page holding
  the replica's write lock;
* a probe: a ``QTimer`` due every ``PROBE_MS`` ms records how late each tick runs. Its lateness
  is the event loop's latency (how long an input event or repaint would have waited); the
  longest gap between two ticks is the GUI thread's longest stall.

Figures (JSON lines): ``idle`` (the probe alone with the window attached: the baseline, same
process), ``under_load`` (pulls and clicks) with ``ratio`` against idle, ``click`` (how long a
click's handler held the GUI thread) and ``pull_page`` (how long each page held the replica's
write lock, on the feeder thread). Medians over the child processes. Targets: event-loop
latency p99 <= 16 ms, longest stall <= 50 ms.

The window runs as in the application: Qt's own event loop (not ``processEvents()`` in a
loop, which took the GIL back twice a millisecond), and the collector paced as ``run_desktop``
paces it (:mod:`agentdesk.ui.gc_pacing`), its first minute's re-freeze done before measuring.

Run: ``QT_QPA_PLATFORM=offscreen python bench/gui_latency_bench.py [--processes N] [--pulls N]``.
With ``--baseline-tree DIR`` (a checkout of the code before a change) the two trees' desktops
run alternately on the same replica, so the before and the after share the machine's load.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import (
    QEventLoop,
    QPoint,
    QSettings,
    Qt,
    QTimer,
    qInstallMessageHandler,
)
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from sqlalchemy import select

from agentdesk.models import Role, Ticket
from agentdesk.sync.client import ApiClient, UserInfo
from agentdesk.sync.engine import SyncEngine
from agentdesk.sync.protocol import PullResponse
from agentdesk.sync.replica import Replica
from agentdesk.sync.rows import row_to_wire
from agentdesk.ui.gc_pacing import CollectorPacing
from agentdesk.ui.shell.main_window import MainWindow, Workspace
from bench._common import ms as _ms
from bench._common import pct, quiet
from tests.ui.queue_fixtures import generate

N_TICKETS = 100_000
PAGE_ROWS = 1000
PROBE_MS = 5
CLICK_EVERY = 0.25
PULL_EVERY = 1.0
IDLE_SECONDS = 3.0
TARGET_P99_MS = 16.0
TARGET_MAX_MS = 50.0
#: How the stand-in sync thread makes its pages (see :class:`Feeder`); the first is the default.
FEEDERS = ("wire", "orm")


ms = partial(_ms, digits=1)


class Probe:
    """A timer due every ``PROBE_MS``: records each tick's lateness and the gap since the
    previous tick. Runs on the GUI thread, so it is late exactly when that thread is busy."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        #: The GUI thread's own CPU time within each gap: near the gap, the thread was busy
        #: (Qt's work or ours); near zero, it waited (for the interpreter lock, or the OS).
        self.cpu: list[float] = []
        self.last = self.last_cpu = 0.0

    def start(self) -> None:
        self.gaps.clear()
        self.cpu.clear()
        self.last, self.last_cpu = time.perf_counter(), time.thread_time()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.gaps.append(now - self.last)
        self.cpu.append(cpu - self.last_cpu)
        self.last, self.last_cpu = now, cpu

    def figures(self) -> dict[str, Any]:
        late = [max(0.0, g - PROBE_MS / 1000) for g in self.gaps]
        return {
            "ticks": len(self.gaps),
            "latency_p50_ms": ms(pct(late, 0.5)),
            "latency_p99_ms": ms(pct(late, 0.99)),
            "longest_stall_ms": ms(max(self.gaps)),
            "longest_stall_gui_cpu_ms": ms(self.cpu[self.gaps.index(max(self.gaps))]),
            "stalls_over_30ms_gap_and_gui_cpu_ms": [
                [ms(g), ms(c)] for g, c in zip(self.gaps, self.cpu, strict=True) if g > 0.03
            ],
        }


class CollectorPasses:
    """The cyclic collector's passes while the load runs (``gc.callbacks``): with the desktop's
    pacing they all run on the GUI thread, so each one is part of some gap between ticks."""

    def __init__(self) -> None:
        self.began = 0.0
        self.passes: list[tuple[int, float]] = []

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.began = time.perf_counter()
        else:
            self.passes.append((info["generation"], time.perf_counter() - self.began))

    def figures(self) -> dict[str, Any]:
        took = [t for _, t in self.passes]
        return {
            "passes": len(took),
            "by_generation": dict(Counter(g for g, _ in self.passes)),
            "p50_ms": ms(pct(took, 0.5)) if took else 0.0,
            "max_ms": ms(max(took, default=0.0)),
            "total_ms": ms(sum(took)),
        }


#: A thread whose innermost Python frame is one of these is blocked, not taking the GIL.
_WAITING = frozenset({"wait", "get", "_pause", "select", "_wait_for_tstate_lock"})


class StallSampler(threading.Thread):
    """Where the GUI thread is while it stalls: every 20 ms that the probe has not ticked for
    over 50 ms, the innermost AgentDesk frame of the GUI thread's stack is counted (or, outside
    AgentDesk, the innermost frame at all: ``run_loop`` is Qt's own work or a wait for the GIL
    inside the event loop). What the other threads run at the same moments is counted too
    (their innermost AgentDesk frame, or the bench's): those are the GIL's other takers. The
    top sites name what a stall is made of (the figures' "why")."""

    def __init__(self, probe: Probe, gui_thread: int) -> None:
        super().__init__(name="bench-stall-sampler", daemon=True)
        self.probe, self.gui_thread = probe, gui_thread
        self.sites: Counter[str] = Counter()
        self.others: Counter[str] = Counter()
        self.halt = threading.Event()
        self.root = str(Path(__file__).resolve().parent.parent)

    def run(self) -> None:
        me = threading.get_ident()
        while not self.halt.wait(0.02):
            if time.perf_counter() - self.probe.last < 0.05:
                continue
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                site = self._site(frame)
                if ident == self.gui_thread:
                    self.sites[site or "(outside agentdesk: Qt or the bench)"] += 1
                elif site is not None and frame.f_code.co_name not in _WAITING:
                    self.others[site] += 1

    def _site(self, frame: Any) -> str | None:
        """The innermost frame in AgentDesk (or in the bench), as ``path:function``."""
        while frame is not None:
            code = frame.f_code
            if code.co_filename.startswith(self.root) and "/.venv/" not in code.co_filename:
                return f"{code.co_filename[len(self.root) + 1 :]}:{code.co_name}"
            frame = frame.f_back
        return None


def run_loop(app: QApplication, seconds: float) -> None:
    """Run the application's event loop for ``seconds``, as ``app.exec()`` does: the GUI thread
    waits in Qt's poll with the GIL released and takes it only to run Python slots. (The bench
    used to spin ``processEvents()`` and ``time.sleep(0.001)``: both return into Python, so the
    GUI thread re-took the GIL twice a millisecond, and under contention each time cost up to
    the interpreter's switch interval: latency the application's own loop does not have.)"""
    loop = QEventLoop()
    QTimer.singleShot(max(1, round(seconds * 1000)), loop.quit)
    loop.exec()


class Feeder(threading.Thread):
    """Stands in for the sync thread: pull pages of ``PAGE_ROWS`` changed tickets, applied
    with ``Replica.apply_pull`` and announced to the engine's page observers (the bridge).

    ``wire`` (the default) does per page what the sync thread does after the network: the
    page's JSON, as the server sends it, parsed as :class:`~agentdesk.sync.client.ApiClient`
    parses it, then applied. The pages' bytes are made before the measurement. ``orm`` makes
    each page during the measurement, from an ORM read of its 1,000 tickets: work the sync
    thread never does, kept to compare with the figures measured that way (before stop 22).
    Wire pages are made from the tickets as they were before the measurement, so a later page
    also puts back what an earlier one changed in its tickets (a tier); ORM pages start from
    the replica as it is. ``page_seconds`` is the apply alone in both; the parse is apart.
    """

    def __init__(
        self, replica: Replica, engine: SyncEngine, pulls: int, seed: int, mode: str = "wire"
    ) -> None:
        super().__init__(name="bench-feeder", daemon=True)
        self.replica, self.engine, self.pulls, self.mode = replica, engine, pulls, mode
        self.rng = random.Random(seed)
        self.page_seconds: list[float] = []
        self.parse_seconds: list[float] = []
        self.error: BaseException | None = None
        self.resting = threading.Event()
        with replica.session() as s:
            self.ids = list(s.scalars(select(Ticket.id)))
        self.cursor = replica.state.cursor
        self.bodies = [
            self._page(self.cursor + k * PAGE_ROWS).model_dump_json().encode()
            for k in range(pulls if mode == "wire" else 0)
        ]

    def run(self) -> None:
        try:
            for k in range(self.pulls):
                began = time.perf_counter()
                self._one_pull(k)
                # An Event's wait, not time.sleep: the stall sampler sees it as waiting.
                self.resting.wait(max(0.0, PULL_EVERY - (time.perf_counter() - began)))
        except BaseException as exc:  # reported by the process
            self.error = exc

    def _page(self, cursor: int) -> PullResponse:
        """A page of ``PAGE_ROWS`` random tickets, each with a new subject and every other one
        with a new tier, versioned after ``cursor``."""
        chosen = self.rng.sample(self.ids, PAGE_ROWS)
        with self.replica.session() as s:
            tickets = list(s.scalars(select(Ticket).where(Ticket.id.in_(chosen))))
        changes = []
        for i, ticket in enumerate(tickets, start=1):
            wire = row_to_wire(ticket)
            wire["version"] = cursor + i
            wire["values"]["subject"] = f"changed {self.rng.random():.6f}"
            if i % 2:
                tier = self.rng.randint(1, 4)
                wire["values"]["tier"] = wire["values"]["urgency"] = tier
            changes.append(wire)
        return PullResponse.model_validate(
            {
                "cursor": cursor + len(changes),
                "has_more": False,
                "changes": changes,
                "last_mutation_id": self.replica.state.last_mutation_id,
                "rejections": [],
            }
        )

    def _one_pull(self, k: int) -> None:
        state = self.replica.state
        if self.mode == "wire":
            if state.cursor != self.cursor + k * PAGE_ROWS:
                raise RuntimeError(f"the replica's cursor moved under the feeder: {state.cursor}")
            parsing = time.perf_counter()
            page = PullResponse.model_validate_json(self.bodies[k])  # as ApiClient._parse
            self.parse_seconds.append(time.perf_counter() - parsing)
        else:
            page = self._page(state.cursor)
        began = time.perf_counter()  # the apply alone in either mode (the figure until stop 21)
        applied = self.replica.apply_pull(page, since=state.cursor)
        self.page_seconds.append(time.perf_counter() - began)
        self.engine._tell_page(applied)


def desktop(
    path: str, tenant: str, user: str, pulls: int, seed: int, feeder_mode: str = "wire"
) -> None:
    """One measurement, in a fresh process (see the module docstring)."""
    qInstallMessageHandler(quiet)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="agentdesk-gui-bench-") as tmp:
        store = QSettings(str(Path(tmp) / "bench.ini"), QSettings.Format.IniFormat)
        url = "http://127.0.0.1:9"  # closed: the engine goes offline and backs off
        replica = Replica(path)
        user_id = uuid.UUID(user)
        replica.configure(
            server_url=url,
            tenant_id=uuid.UUID(tenant),
            user_id=user_id,
            username="agent0",
            role=Role.AGENT,
            timezone="America/New_York",
        )
        client = ApiClient(url)
        engine = SyncEngine(replica, client, backoff_base=30.0, backoff_cap=60.0)
        workspace = Workspace(
            replica=replica,
            client=client,
            engine=engine,
            user=UserInfo(
                id=user_id,
                username="agent0",
                display_name="Bench Agent",
                role=Role.AGENT,
                tenant_id=uuid.UUID(tenant),
            ),
            server_label="Bench",
            token_key=url,
        )
        window = MainWindow(store)
        window.resize(1440, 860)
        window.show()
        # As run_desktop does once the window shows: the collector's full passes paced.
        pacing = CollectorPacing(app)
        pacing.start()
        window.attach(workspace)
        model, view, panel = window.queue_model, window.queue_view, window.ticket_panel
        assert model is not None
        assert view is not None
        assert panel is not None
        deadline = time.perf_counter() + 120
        while model.rowCount() == 0:
            app.processEvents()
            if time.perf_counter() > deadline:
                raise RuntimeError("the queue never filled")
        run_loop(app, 2.0)  # first paint, panels, the engine's first (failed) attempt
        # What the pacing's minute timer does in the app: the loaded queue and panels are
        # frozen before the agent works, so the measurement is of the steady state.
        pacing.refreeze()

        probe = Probe()
        probe.start()
        run_loop(app, IDLE_SECONDS)
        probe.stop()
        idle = probe.figures()

        table = view.table()
        clicks: list[float] = []
        mutations = [0]

        def click() -> None:
            began = time.perf_counter()
            if (
                panel.assign_me_button.isVisible()
                and panel.assign_me_button.isEnabled()
                and rng.random() < 0.5
            ):
                QTest.mouseClick(panel.assign_me_button, Qt.MouseButton.LeftButton)
                mutations[0] += 1
            else:
                first = table.rowAt(0)
                visible = max(1, table.viewport().height() // max(1, table.rowHeight(0)) - 1)
                row = first + rng.randrange(visible)
                rect = table.visualRect(model.index(row, 1))
                QTest.mouseClick(
                    table.viewport(),
                    Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier,
                    QPoint(rect.center()),
                )
            clicks.append(time.perf_counter() - began)

        clicker = QTimer()
        clicker.setInterval(int(CLICK_EVERY * 1000))
        clicker.timeout.connect(click)
        feeder = Feeder(replica, engine, pulls, seed, feeder_mode)
        sampler = StallSampler(probe, threading.get_ident())
        # GUI_BENCH_PROFILE=FILE: the GUI thread's Python under load, for pstats (cProfile
        # profiles only the thread that enables it): which of our handlers the stalls run.
        passes = CollectorPasses()
        gc.callbacks.append(passes.callback)
        profile_to = os.environ.get("GUI_BENCH_PROFILE")
        profiler = cProfile.Profile() if profile_to else None
        probe.start()
        sampler.start()
        clicker.start()
        feeder.start()
        if profiler is not None:
            profiler.enable()
        while feeder.is_alive():
            run_loop(app, 0.1)
        run_loop(app, 0.5)  # the last page's delivery
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(f"{profile_to}.{os.getpid()}")
        clicker.stop()
        probe.stop()
        gc.callbacks.remove(passes.callback)
        sampler.halt.set()
        if feeder.error is not None:
            raise feeder.error
        load = probe.figures()
        print(
            json.dumps(
                {
                    "metric": "run",
                    "idle": idle,
                    "under_load": load,
                    "clicks": len(clicks),
                    "mutations": mutations[0],
                    "click_p50_ms": ms(pct(clicks, 0.5)),
                    "click_max_ms": ms(max(clicks)),
                    "pulls": len(feeder.page_seconds),
                    "page_apply_p50_ms": ms(pct(feeder.page_seconds, 0.5)),
                    "page_apply_max_ms": ms(max(feeder.page_seconds)),
                    **(
                        {"page_parse_p50_ms": ms(pct(feeder.parse_seconds, 0.5))}
                        if feeder.parse_seconds
                        else {}
                    ),
                    "collector": passes.figures(),
                    "burst_freezes": pacing.burst_freezes,
                    "frozen_objects": gc.get_freeze_count(),
                    "stall_samples": sampler.sites.most_common(6),
                    "stall_other_threads": sampler.others.most_common(6),
                }
            ),
            flush=True,
        )
        pacing.stop()
        window.detach(timeout=5)
        window.close()
        workspace.close()


def summary(runs: list[dict[str, Any]], code: str | None) -> dict[str, Any]:
    """The medians over some child processes' ``run`` lines."""

    def med(key: str, part: str | None = None) -> float:
        values = [float(r[part][key] if part else r[key]) for r in runs]
        return round(statistics.median(values), 1)

    sites: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for r in runs:
        sites.update(dict(r["stall_samples"]))
        others.update(dict(r.get("stall_other_threads", [])))
    p99, stall = med("latency_p99_ms", "under_load"), med("longest_stall_ms", "under_load")
    idle_p99 = med("latency_p99_ms", "idle")
    return {
        "bench": "gui_latency",
        "metric": "gui_thread_under_load",
        **({"code": code} if code else {}),
        "processes": len(runs),
        "latency_p50_ms": med("latency_p50_ms", "under_load"),
        "latency_p99_ms": p99,
        "longest_stall_ms": stall,
        "longest_stall_runs_ms": [r["under_load"]["longest_stall_ms"] for r in runs],
        "baseline": "idle (same window, no pulls or clicks)",
        "idle_p99_ms": idle_p99,
        "idle_longest_stall_ms": med("longest_stall_ms", "idle"),
        "ratio_p99": round(p99 / idle_p99, 1) if idle_p99 else None,
        "click_p50_ms": med("click_p50_ms"),
        "click_max_ms": med("click_max_ms"),
        "page_apply_p50_ms": med("page_apply_p50_ms"),
        "page_apply_max_ms": med("page_apply_max_ms"),
        **(
            {"page_parse_p50_ms": med("page_parse_p50_ms")}
            if all("page_parse_p50_ms" in r for r in runs)
            else {}
        ),
        "stall_samples_20ms": sites.most_common(6),
        "stall_other_threads_20ms": others.most_common(6),
        "target_p99_ms": TARGET_P99_MS,
        "target_max_ms": TARGET_MAX_MS,
        "meets_target": p99 <= TARGET_P99_MS and stall <= TARGET_MAX_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--pulls", type=int, default=12)
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="a checkout of the code to compare with (e.g. `git worktree add` of main): its "
        "bench runs alternately with this one's, on the same replica, so the before and "
        "after share the machine's load; one summary line each",
    )
    parser.add_argument(
        "--feeder",
        choices=(*FEEDERS, "both"),
        default=FEEDERS[0],
        help="how the stand-in sync thread makes its pages (see Feeder); 'both' alternates "
        "the two in each process round, one summary line each",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    here = Path(__file__).resolve()
    trees: list[tuple[str | None, Path]] = [(None, here)]
    if args.baseline_tree is not None:
        baseline = args.baseline_tree.resolve() / "bench" / here.name
        if not baseline.is_file():
            parser.error(f"--baseline-tree: no {baseline}")
        trees = [("baseline", baseline), ("this tree", here)]
    feeders = FEEDERS[::-1] if args.feeder == "both" else (args.feeder,)
    sides: list[tuple[str | None, Path, str | None]] = []
    for code, script in trees:
        if "--feeder" not in script.read_text(encoding="utf-8"):
            # A tree from before stop 22: its bench knows only its own feeder (ORM pages).
            sides.append((f"{code} (its own feeder: orm)", script, None))
            continue
        for feeder in feeders:
            label = f"feeder {feeder}" if len(feeders) > 1 else None
            sides.append((" ".join(filter(None, (code, label))) or None, script, feeder))
    with tempfile.TemporaryDirectory(prefix="agentdesk-gui-bench-") as tmp:
        data = generate(Path(tmp) / "replica.sqlite3", N_TICKETS, open_only=True)
        generated = round(time.perf_counter() - started, 1)
        print(
            json.dumps(
                {
                    "bench": "gui_latency",
                    "metric": "environment",
                    "tickets": N_TICKETS,
                    "generate_s": generated,
                    "cpus": os.cpu_count(),
                    "platform": os.environ["QT_QPA_PLATFORM"],
                    "page_rows": PAGE_ROWS,
                    "feeder": args.feeder,
                    "probe_ms": PROBE_MS,
                    "click_every_s": CLICK_EVERY,
                    "pull_every_s": PULL_EVERY,
                }
            ),
            flush=True,
        )
        runs: dict[str | None, list[dict[str, Any]]] = {code: [] for code, _, _ in sides}
        for i in range(args.processes):
            for code, script, feeder in sides:
                child = subprocess.run(
                    [
                        sys.executable,
                        str(script),
                        "--desktop",
                        str(data.path),
                        str(data.tenant_id),
                        str(data.user_ids[0]),
                        str(args.pulls),
                        str(i),
                        *([feeder] if feeder is not None else []),
                    ],
                    check=False,
                    timeout=900,
                    capture_output=True,
                    text=True,
                    cwd=script.parent.parent,
                )
                if child.returncode != 0:
                    sys.exit(
                        f"the desktop of process {i} ({code or 'this tree'}) failed:\n"
                        f"{child.stderr[-4000:]}"
                    )
                for line in child.stdout.splitlines():
                    figure = json.loads(line)
                    runs[code].append(figure)
                    print(
                        json.dumps(
                            {
                                "bench": "gui_latency",
                                "process": i,
                                **({"code": code} if code else {}),
                                **figure,
                            }
                        ),
                        flush=True,
                    )
        for code, _, _ in sides:
            print(json.dumps(summary(runs[code], code)), flush=True)


if __name__ == "__main__":
    if len(sys.argv) in (7, 8) and sys.argv[1] == "--desktop":
        mode = sys.argv[7] if len(sys.argv) == 8 else FEEDERS[0]
        if mode not in FEEDERS:
            sys.exit(f"--desktop: feeder {mode!r} is not one of {', '.join(FEEDERS)}")
        desktop(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), mode)
    else:
        main()
