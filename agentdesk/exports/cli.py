"""``agentdesk report time``: a customer's time statement as CSV or PDF from the command line.

Follows :mod:`agentdesk.server.cli`'s conventions (database from ``--database-url``, else
``$AGENTDESK_DATABASE_URL``; exit 1 with a message and nothing written on refusal). With neither,
it reads the desktop's local-mode data (the embedded server's SQLite file), so a consultant
working without a team server gets the same statement the desktop saves. With ``--server`` and
``--user`` it asks a team server instead (``GET /api/v1/reports/time``), signed in with the token
the desktop keeps in the system keyring for that server and user: a consultant needs no
database access, and the server applies its role rules (agents get no statement). Imports only the
standard library at module level, like every subcommand module.
"""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path
from typing import Any

from ..server.cli import (
    DATABASE_ENV,
    CommandError,
    _database,
    _Formatter,
    _handle,
    safe_url,
)

__all__ = ["add_report_commands", "run_report_time"]


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def add_report_commands(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        formatter_class=_Formatter,
        help="reports for customers (time statements)",
        description="Reports computed from the team's data, the same ones the desktop exports.",
    )
    kinds = report.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    time_ = kinds.add_parser(
        "time",
        formatter_class=_Formatter,
        help="a customer's 1-on-1 time statement as CSV or PDF",
        description=(
            "Write one organisation's time statement for a period: opening balance, purchases, "
            "each day's entries with raw and billed time (work rounded up to 30 minutes once "
            "per day), scheduled blocks, late cancellations, extra-engineer time, hours "
            "forfeited at expiry, overage and closing balance. Days are the team's local days; "
            "a period covers at most three years.\n\n"
            "The data comes from a team server with --server and --user (signed in with the "
            "desktop: the token is read from the system keyring), else from --database-url, "
            f"else ${DATABASE_ENV}, else the desktop's local-mode data on this computer."
        ),
        epilog=(
            "examples:\n"
            "  agentdesk report time --org Globex --from 2026-10-01 --to 2026-10-31 "
            "--format pdf --out globex-october.pdf\n"
            "  agentdesk report time --server https://support.example.com --user dana "
            "--org Globex --from 2026-10-01 --to 2026-10-31 --out globex.pdf\n"
            "  AGENTDESK_DATABASE_URL=postgresql+psycopg://agentdesk@db/agentdesk \\\n"
            "      agentdesk report time --org Globex --from 2026-10-01 --to 2026-10-31 "
            "--out globex.csv"
        ),
    )
    time_.add_argument(
        "--org", required=True, metavar="NAME", help="the organisation's name (case-insensitive)"
    )
    time_.add_argument(
        "--from",
        dest="start",
        required=True,
        type=_day,
        metavar="DATE",
        help="first day of the period, YYYY-MM-DD",
    )
    time_.add_argument(
        "--to",
        dest="end",
        required=True,
        type=_day,
        metavar="DATE",
        help="last day of the period (inclusive), YYYY-MM-DD",
    )
    time_.add_argument(
        "--format",
        choices=("csv", "pdf"),
        default=None,
        help="csv or pdf (default: from the --out file's extension)",
    )
    time_.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        type=Path,
        help="file to write; replaced only once the statement is complete",
    )
    time_.add_argument(
        "--database-url",
        metavar="URL",
        help=f"database URL (default: ${DATABASE_ENV}, else the local-mode data)",
    )
    time_.add_argument(
        "--server", metavar="URL", help="a team server to ask instead of a database (with --user)"
    )
    time_.add_argument(
        "--user",
        metavar="NAME",
        help="the user name you signed in with on the desktop (with --server)",
    )
    time_.set_defaults(handler=_handle(run_report_time))


def _url(args: argparse.Namespace) -> str:
    url = getattr(args, "database_url", None) or os.environ.get(DATABASE_ENV)
    if url:
        return str(url)
    from ..models.db import sqlite_url
    from ..paths import data_dir

    local = data_dir() / "local-server.sqlite3"
    if not local.is_file():
        raise CommandError(
            f"no local-mode data at {local}; start the desktop once, or name a database with "
            f"--database-url or ${DATABASE_ENV}"
        )
    return sqlite_url(local)


def run_report_time(args: argparse.Namespace) -> int:
    """Write the statement to a temporary file next to --out, then move it into place."""
    from ..models.db import make_session_factory, session_scope
    from ..queries.ledger import QueryError, find_organisation
    from .statement_file import FORMATS, replace_file, statement_file

    out: Path = args.out
    fmt = args.format or out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise CommandError("say --format csv or --format pdf (the file name does not tell)")
    if not out.parent.is_dir():
        raise CommandError(f"the folder {out.parent} does not exist")
    if args.server or args.user:
        return _report_from_server(args, out, fmt)
    url = _url(args)
    with (
        _database(url) as (engine, _before, _after),
        session_scope(make_session_factory(engine, write=False)) as session,
    ):
        try:
            org = find_organisation(session, args.org)
            made = statement_file(session, org.id, args.start, args.end, fmt)
        except QueryError as exc:
            raise CommandError(exc.message) from None
    replace_file(out, made.body)
    print(
        f"wrote the {fmt.upper()} time statement of {made.organisation} for {made.start} to "
        f"{made.end} to {out} (billed {made.billed} min; closing balance {made.closing} min; "
        f"database {safe_url(url)})"
    )
    return 0


def _report_from_server(args: argparse.Namespace, out: Path, fmt: str) -> int:
    """The statement as the team server renders it, with the desktop's stored sign-in."""
    from ..sync.client import ApiClient, ApiError, Unauthorized
    from ..sync.credentials import TokenStore
    from ..sync.server_url import normalise_server
    from .statement_file import replace_file

    if not (args.server and args.user):
        raise CommandError(
            "--server and --user go together: the server to ask and the user "
            "name you signed in with on the desktop"
        )
    if args.database_url:
        raise CommandError("give either --server or --database-url, not both")
    server = normalise_server(args.server)
    token = TokenStore(server, args.user).load()
    if token is None:
        raise CommandError(
            f"not signed in to {server} as {args.user}: sign in with the desktop "
            "first (its token is kept in the system keyring)"
        )
    try:
        client = ApiClient(server, token=token)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    try:
        with client:
            response = client.time_statement(args.org, args.start, args.end, fmt)
    except Unauthorized:
        raise CommandError(
            f"{server} no longer accepts the sign-in of {args.user}: sign in with the desktop again"
        ) from None
    except ApiError as exc:
        raise CommandError(f"{server}: {exc}") from None
    replace_file(out, response.content)
    print(
        f"wrote the {fmt.upper()} time statement of {args.org} for {args.start} to "
        f"{args.end} to {out} (billed {response.headers.get('X-Statement-Billed-Minutes')} "
        f"min; closing balance {response.headers.get('X-Statement-Closing-Minutes')} min; "
        f"server {server})"
    )
    return 0
