"""``agentdesk server backup`` and ``agentdesk server restore``: the command line of
:mod:`agentdesk.server.backup`. Standard library only at import (``agentdesk --help`` builds
every parser)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .cli import _DATABASE_HELP, CommandError, _Formatter, _handle, database_url, safe_url


def add_backup_commands(server_commands: Any) -> None:
    """Register ``backup`` and ``restore`` under ``agentdesk server``."""
    backup = server_commands.add_parser(
        "backup",
        formatter_class=_Formatter,
        help="write a consistent backup of the database to a new file, while it serves",
        description=(
            "Write a consistent backup of the server's database to FILE while the server keeps "
            "running: SQLite's online backup API for SQLite, and for PostgreSQL a copy of every "
            "table read from one snapshot. Either way the backup is a single SQLite file that "
            "'agentdesk server restore' puts back into SQLite or PostgreSQL. FILE must not exist "
            "yet; it is readable by its owner only (it holds password hashes)."
        ),
        epilog=(
            "examples:\n"
            "  agentdesk server backup --out /var/backups/agentdesk/$(date +%%F).sqlite3\n"
            "  AGENTDESK_DATABASE_URL=postgresql+psycopg://agentdesk@db/agentdesk \\\n"
            "      agentdesk server backup --out agentdesk-backup.sqlite3"
        ),
    )
    backup.add_argument(
        "--out",
        metavar="FILE",
        required=True,
        type=Path,
        help="the backup file to create (must not exist)",
    )
    backup.add_argument(
        "--database-url", metavar="URL", default=argparse.SUPPRESS, help=_DATABASE_HELP
    )
    backup.set_defaults(handler=run_backup)

    restore = server_commands.add_parser(
        "restore",
        formatter_class=_Formatter,
        help="restore a backup into an empty database",
        description=(
            "Restore a backup made by 'agentdesk server backup' into an empty database (a new "
            "SQLite file, or a new PostgreSQL database), upgrading it to this AgentDesk's "
            "schema on the way. Refuses a database that holds any data, and a backup made by a "
            "newer AgentDesk. All or nothing: on any error the database keeps nothing. Start "
            "the server on the restored database afterwards; desktops notice and reload."
        ),
        epilog=(
            "example:\n"
            "  createdb -O agentdesk agentdesk_restored\n"
            "  AGENTDESK_DATABASE_URL=postgresql+psycopg://agentdesk@db/agentdesk_restored \\\n"
            "      agentdesk server restore agentdesk-backup.sqlite3"
        ),
    )
    restore.add_argument("file", metavar="FILE", type=Path, help="the backup file")
    restore.add_argument(
        "--database-url", metavar="URL", default=argparse.SUPPRESS, help=_DATABASE_HELP
    )
    restore.set_defaults(handler=run_restore)


@_handle
def run_backup(args: argparse.Namespace) -> int:
    """Back up; exit 1 with a message (and no file) when refused."""
    from ..models.migrate import SchemaTooNew
    from .backup import BackupError, backup

    url = database_url(args)
    try:
        summary = backup(url, args.out)
    except (BackupError, SchemaTooNew) as exc:
        raise CommandError(f"{exc}; no backup was written") from None
    print(
        f"Backed up {safe_url(url)} (schema revision {summary.revision}) to {summary.path}: "
        f"{summary.total_rows} rows in {len(summary.rows)} tables, "
        f"{summary.path.stat().st_size / 1e6:.1f} MB, {summary.seconds:.1f} s."
    )
    return 0


@_handle
def run_restore(args: argparse.Namespace) -> int:
    """Restore; exit 1 with a message (target unchanged) when refused."""
    from ..models.migrate import SchemaTooNew
    from .backup import BackupError, restore

    url = database_url(args)
    try:
        summary = restore(args.file, url)
    except (BackupError, SchemaTooNew) as exc:
        raise CommandError(f"{exc}; nothing was restored") from None
    print(
        f"Restored {summary.path} (schema revision {summary.revision}) into {safe_url(url)}: "
        f"{summary.total_rows} rows in {len(summary.rows)} tables, {summary.seconds:.1f} s."
    )
    return 0
