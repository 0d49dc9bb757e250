"""What a page of the Notifications view costs the server on a large outbox.

The view reads ``GET /api/v1/notifications`` newest first, 500 rows a page, follows the ``next``
cursor for Load more, and re-reads the range it shows to refresh (after pulls, and every 30 s).
Measured over HTTP (the app in-process, a real database): ``--deliveries`` deliveries, one per
notification, a second apart, every tenth failed; medians of ``--runs`` requests each for the
first page, a page 20 pages deep, the first page of failed ones, and ``GET /healthz`` as the
baseline in the same run. Prints JSON lines.

Usage: ``python bench/outbox_page_bench.py [--database-url postgresql+psycopg://...]``
(default: ``AGENTDESK_BENCH_DATABASE_URL``, else SQLite).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text

from agentdesk.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationKind,
    new_id,
    utcnow,
)
from agentdesk.models.db import make_engine, make_session_factory, session_scope, sqlite_url
from agentdesk.models.migrate import upgrade
from agentdesk.server.app import create_app
from agentdesk.server.settings import ServerSettings
from tests.notifications.conftest import Api
from tests.server.helpers import client_for
from tests.sync.world import World, build_world


def fill(world: World, deliveries: int) -> None:
    now = utcnow()
    with session_scope(world.sessions) as s:
        for start in range(0, deliveries, 5000):
            notes: list[dict[str, Any]] = []
            rows: list[dict[str, Any]] = []
            for i in range(start, min(deliveries, start + 5000)):
                note_id, delivery_id = new_id(), new_id()
                notes.append(
                    {
                        "id": note_id,
                        "tenant_id": world.tenant,
                        "kind": NotificationKind.REPLY,
                        "ticket_id": None,
                        "subject": f"Message {i}",
                        "body_text": "hello",
                        "body_html": "<p>hello</p>",
                        "created_at": now - timedelta(seconds=i),
                        "cause": "",
                    }
                )
                rows.append(
                    {
                        "id": delivery_id,
                        "notification_id": note_id,
                        "tenant_id": world.tenant,
                        "email": f"r{i % 97}@example.test",
                        "name": "",
                        "contact_id": None,
                        "message_id": f"<{delivery_id.hex}@bench.test>",
                        "status": DeliveryStatus.FAILED if i % 10 == 0 else DeliveryStatus.SENT,
                        "attempts": 1,
                        "next_attempt_at": now,
                        "last_error": "",
                        "sent_at": None,
                    }
                )
            s.execute(insert(Notification), notes)
            s.execute(insert(NotificationDelivery), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("AGENTDESK_BENCH_DATABASE_URL"))
    parser.add_argument("--deliveries", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument(
        "--without-index",
        action="store_true",
        help="drop ix_notifications_tenant_created first (what a page cost before it)",
    )
    args = parser.parse_args()
    url = args.database_url or sqlite_url(Path(tempfile.mkdtemp()) / "outbox.sqlite3")
    engine = make_engine(url)
    upgrade(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE tenants CASCADE"))
    if args.without_index:
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX ix_notifications_tenant_created"))
    world = build_world(make_session_factory(engine))
    fill(world, args.deliveries)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    app = create_app(ServerSettings(database_url=url, migrate_on_start=False))
    with client_for(app) as client:
        headers = Api(client, world).headers("lead")

        def median_ms(path: str, params: dict[str, Any]) -> tuple[float, Any]:
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                r = client.get(path, params=params, headers=headers)
                times.append(time.perf_counter() - started)
                assert r.status_code == 200, r.text
            return statistics.median(times) * 1000, r.json()

        healthz, _ = median_ms("/healthz", {})
        first, page = median_ms("/api/v1/notifications", {"limit": 500})
        cursor = page["next"]
        for _ in range(19):
            cursor = client.get(
                "/api/v1/notifications",
                params={"limit": 500, "before": cursor},
                headers=headers,
            ).json()["next"]
        deep, _ = median_ms("/api/v1/notifications", {"limit": 500, "before": cursor})
        failed, _ = median_ms("/api/v1/notifications", {"limit": 500, "status": "failed"})
    print(
        json.dumps(
            {
                "bench": "outbox_page",
                "engine": engine.dialect.name,
                "deliveries": args.deliveries,
                "index": not args.without_index,
                "runs": args.runs,
                "healthz_ms": round(healthz, 1),
                "first_page_ms": round(first, 1),
                "page_21_ms": round(deep, 1),
                "failed_first_page_ms": round(failed, 1),
                "first_page_over_healthz": round(first / healthz, 1),
            }
        )
    )
    if args.without_index:
        with engine.begin() as conn:  # leave the database as the migrations made it
            conn.execute(
                text(
                    "CREATE INDEX ix_notifications_tenant_created "
                    "ON notifications (tenant_id, created_at)"
                )
            )
    engine.dispose()


if __name__ == "__main__":
    main()
