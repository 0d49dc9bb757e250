"""The backend's subcommands: ``agentdesk server`` (and ``server init``), ``agentdesk user add``
and ``agentdesk demo-data``.

``agentdesk --help`` imports this module to list the commands, so it imports only the standard
library at module level: FastAPI, SQLAlchemy, argon2 and uvicorn load when a command runs.

Conventions shared by every command:

* The database is ``--database-url``, else ``$AGENTDESK_DATABASE_URL`` (keeps a PostgreSQL
  password out of the process list and shell history), else the local SQLite file under the user
  data directory that ``agentdesk server`` and the desktop's local mode use.
* Every command upgrades the schema first, so it works on a brand-new database.
* Exit codes: 0 done (including "already there, nothing to do"), 1 refused or failed with a
  message on stderr and nothing changed, 2 bad command line (argparse), 130 cancelled (Ctrl-C).
* Passwords and tokens are never printed or logged, and a database URL is shown with its
  password masked. The one exception is ``demo-data``, whose passwords are public by design.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

log = logging.getLogger("agentdesk.server")

#: Mirrors :class:`agentdesk.models.Role` (a test keeps them equal); listed here so that building
#: the parser does not import SQLAlchemy.
ROLES: tuple[str, ...] = ("agent", "coordinator", "consultant", "lead", "admin")
DATABASE_ENV = "AGENTDESK_DATABASE_URL"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: Matches what ``POST /api/v1/login`` accepts, so every user added here can sign in.
_USERNAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_PASSWORD = 1024

_DATABASE_HELP = (
    f"database URL, e.g. sqlite+pysqlite:///path/to/agentdesk.sqlite3 or "
    f"postgresql+psycopg://user@host/dbname (default: ${DATABASE_ENV}, else the local SQLite "
    f"database under the user data directory)"
)

Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """A refusal or failure to report on stderr (exit code 1); nothing was changed."""


# --- the parsers ---------------------------------------------------------------------------------


class _Formatter(argparse.HelpFormatter):
    """Wraps each paragraph of a description on its own and keeps example lines (indented, or
    ending in a colon) exactly as written, so epilogs can show commands to copy."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if lines and all(line.startswith("  ") or line.endswith(":") for line in lines):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(
                    textwrap.fill(
                        " ".join(paragraph.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                    )
                )
        return "\n\n".join(out)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, got {port}")
    return port


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {n}")
        return n

    return parse


def add_server_commands(commands: Any) -> None:
    """Register the backend's subcommands on the top-level ``agentdesk`` subparsers object."""
    server = commands.add_parser(
        "server",
        formatter_class=_Formatter,
        help="run the team's AgentDesk server (or set one up: server init)",
        usage="%(prog)s [-h] [--database-url URL] [--host HOST] [--port PORT] "
        "[--max-db-connections N] [--log-level LEVEL]\n       %(prog)s init [-h] [options]"
        "\n       %(prog)s backup --out FILE [--database-url URL]"
        "\n       %(prog)s restore FILE [--database-url URL]"
        "\n       %(prog)s backfill-sla [--database-url URL]",
        description=(
            "Run the AgentDesk API server: sign-in, plans, organisations and the sync endpoints "
            "desktops talk to. The database schema is upgraded on start.\n\n"
            "SQLite suits one person or a small office; a team runs PostgreSQL and may start "
            "several server processes (one command each, on different ports) behind a TLS "
            "reverse proxy. Logs go to stderr; tokens and passwords are never logged."
        ),
        epilog=(
            "examples:\n"
            "  agentdesk server\n"
            "  agentdesk server init --database-url postgresql+psycopg://agentdesk@db/agentdesk "
            "--team-name 'Acme Support'\n"
            "  AGENTDESK_DATABASE_URL=postgresql+psycopg://agentdesk@db/agentdesk \\\n"
            "      agentdesk server --host 0.0.0.0 --port 8765"
        ),
    )
    server.add_argument("--database-url", metavar="URL", help=_DATABASE_HELP)
    server.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}, this machine only; 0.0.0.0 for "
        "every interface, behind a TLS proxy)",
    )
    server.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"TCP port to listen on (default: {DEFAULT_PORT})",
    )
    server.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="ADDRESS",
        help="a reverse proxy (IP address or network) whose X-Forwarded-For header names the "
        "client; repeat for several. Default: none, the connecting address counts "
        "(sign-in throttling is per address)",
    )
    server.add_argument(
        "--max-db-connections",
        type=_count(2, 10_000),
        default=None,
        metavar="N",
        help="the most database connections this process opens (default: "
        "$AGENTDESK_MAX_DB_CONNECTIONS, else 20); it serves with that many request threads "
        "(one fewer on PostgreSQL, whose LISTEN takes one) and queues the rest. Several "
        "processes on one PostgreSQL: processes x N <= max_connections - other connections "
        "(docs/deploy.md)",
    )
    server.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        metavar="LEVEL",
        help="how much to log to stderr: debug, info, warning or error (default: info)",
    )
    server.add_argument(
        "--log-format",
        choices=("auto", "json", "text"),
        default="auto",
        metavar="FORMAT",
        help="log lines as json (one object per line), text, or auto: text on "
        "a terminal, json otherwise (default: auto)",
    )
    server.add_argument(
        "--backup-first",
        metavar="DIR",
        help="if the database schema needs upgrading, back the database up "
        "into DIR first (a new file; see 'server backup') and refuse to "
        "start if that fails",
    )
    server.set_defaults(handler=run_server)
    server_commands = server.add_subparsers(
        dest="server_command", metavar="SUBCOMMAND", title="optional subcommand"
    )
    init = server_commands.add_parser(
        "init",
        # Named outright: argparse would build it from the server's two-line usage.
        prog="agentdesk server init",
        formatter_class=_Formatter,
        help="create or upgrade the database and create the team",
        description=(
            "Create or upgrade the database schema, and create the team (tenant) if the "
            "database has none yet. Safe to run again: an existing team is left as it is and "
            "the command says so. Add people afterwards with 'agentdesk user add'.\n\n"
            "With --demo the team is created with the realistic demo data of 'agentdesk "
            "demo-data' (plans, customers, tickets, hour blocks and the demo users, whose "
            "public passwords are printed): one team to try everything with, to which 'user "
            "add' then adds people."
        ),
        epilog=(
            "examples:\n"
            "  agentdesk server init --team-name 'Acme Support' --timezone America/Chicago \\\n"
            "      --database-url postgresql+psycopg://agentdesk@db/agentdesk\n"
            "  agentdesk server init --demo --team-name 'Acme Support' \\\n"
            "      --database-url sqlite+pysqlite:///demo.sqlite3"
        ),
    )
    # SUPPRESS: without it the subcommand's unset option would erase the one given before it.
    init.add_argument(
        "--database-url", metavar="URL", default=argparse.SUPPRESS, help=_DATABASE_HELP
    )
    init.add_argument(
        "--team-name",
        metavar="NAME",
        default=None,
        help="the team's name, shown to its members (default: 'Support team', "
        "or the demo's name with --demo)",
    )
    init.add_argument(
        "--timezone",
        metavar="TZ",
        default="America/New_York",
        help="IANA time zone the team's calendar years and billing days are counted in "
        "(default: America/New_York)",
    )
    init.add_argument(
        "--no-default-plans",
        dest="default_plans",
        action="store_false",
        help="start without plans and calendars (by default the team gets the support "
        "policies' Basic/Free, Standard, Premium and Enterprise plans on their calendars)",
    )
    init.add_argument(
        "--backup-first",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="if the schema needs upgrading, back the database up into DIR first",
    )
    init.add_argument(
        "--demo",
        action="store_true",
        help="create the team with demo data and the demo users (a trial or "
        "training database, never a production one)",
    )
    init.add_argument(
        "--tickets",
        type=_count(0, 200_000),
        default=3000,
        metavar="N",
        help="with --demo: how many demo tickets, 0 to 200000 (default: 3000)",
    )
    init.set_defaults(handler=run_init)
    from .backup_cli import add_backup_commands

    add_backup_commands(server_commands)

    backfill = server_commands.add_parser(
        "backfill-sla",
        formatter_class=_Formatter,
        help="compute the stored SLA instants of tickets from before they were stored",
        description=(
            "Compute each ticket's stored first-response due and at-risk instants (what the "
            "dashboard's SLA counts read) where none is stored yet: tickets created before an "
            "upgrade added them. The server does this after each schema upgrade it performs; "
            "run it once on a database an earlier AgentDesk already upgraded. Safe to repeat "
            "and to run while the server serves; desktops receive the values with their next "
            "pull."
        ),
    )
    backfill.add_argument(
        "--database-url", metavar="URL", default=argparse.SUPPRESS, help=_DATABASE_HELP
    )
    backfill.set_defaults(handler=run_backfill_sla)

    user = commands.add_parser(
        "user",
        formatter_class=_Formatter,
        help="manage the people who sign in to the server",
        description="Manage the people who sign in to the AgentDesk server.",
        epilog="example:\n  agentdesk user add dana --role lead --display-name 'Dana Whitfield'",
    )
    user_commands = user.add_subparsers(dest="user_command", metavar="SUBCOMMAND", required=True)
    add = user_commands.add_parser(
        "add",
        formatter_class=_Formatter,
        help="add a person who can sign in",
        description=(
            "Add a person to a team. The password is asked for twice (it is not shown while "
            "typed), or read from the first line of standard input with --password-stdin or "
            "whenever standard input is not a terminal, for scripts. It is stored only as an "
            "argon2 hash and never printed.\n\n"
            "Roles: agent (works the queue), coordinator (triages and assigns), consultant "
            "(1-on-1 billable work), lead (dashboards, plans and calendars), admin (everything, "
            "including people)."
        ),
        epilog=(
            "examples:\n"
            "  agentdesk user add dana --role lead --display-name 'Dana Whitfield' "
            "--email dana@example.com\n"
            "  printf '%s\\n' \"$PASSWORD\" | agentdesk user add sam --role agent "
            "--password-stdin"
        ),
    )
    add.add_argument(
        "username", metavar="NAME", help="sign-in name: up to 64 letters, digits and . _ @ -"
    )
    add.add_argument(
        "--role", required=True, choices=ROLES, help=f"what the person may do: {', '.join(ROLES)}"
    )
    add.add_argument(
        "--display-name", metavar="TEXT", help="the name colleagues see (default: the username)"
    )
    add.add_argument("--email", metavar="ADDRESS", help="email address (optional)")
    add.add_argument(
        "--team",
        metavar="NAME",
        help="the team to add the person to; needed only when the database holds "
        "more than one team",
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of prompting",
    )
    add.add_argument("--database-url", metavar="URL", help=_DATABASE_HELP)
    add.set_defaults(handler=run_user_add)

    from_demo = (
        "Create a demo support team with realistic data, so every screen has something to "
        "show: the four support plans and their business calendars, 36 customer "
        "organisations with validated and unvalidated contacts, tickets from the last four "
        "months in every workflow state with their history, 1-on-1 hour blocks (some expired, "
        "some expiring soon), appointments and time entries. Times are relative to now, so the "
        "demo always looks current.\n\n"
        "The demo team gets its own users, one per role and more, whose usernames and "
        "passwords are printed at the end (they are public: use a demo database, never a "
        "production one). Running it again changes nothing: an existing demo team is "
        "reported and left as it is. The same --seed gives the same data."
    )
    demo = commands.add_parser(
        "demo-data",
        formatter_class=_Formatter,
        help="fill a database with a realistic demo team",
        description=from_demo,
        epilog=(
            "examples:\n"
            "  agentdesk demo-data                  # into agentdesk server's default file\n"
            "  agentdesk demo-data --database-url sqlite+pysqlite:///demo.sqlite3 --seed 7 "
            "--tickets 10000"
        ),
    )
    demo.add_argument("--database-url", metavar="URL", help=_DATABASE_HELP)
    demo.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed; the same seed gives the same data (default: 0)",
    )
    demo.add_argument(
        "--tickets",
        type=_count(0, 200_000),
        default=3000,
        metavar="N",
        help="how many tickets to create, 0 to 200000 (default: 3000)",
    )
    demo.set_defaults(handler=run_demo_data)


# --- helpers -------------------------------------------------------------------------------------


def _fail(message: str) -> int:
    print(f"agentdesk: error: {message}", file=sys.stderr)
    return 1


def _handle(run: Handler) -> Handler:
    """Turn expected failures into a message and exit code 1, never a traceback."""

    def wrapper(args: argparse.Namespace) -> int:
        from sqlalchemy.exc import ArgumentError, OperationalError

        from ..models.migrate import SchemaTooNew

        try:
            return run(args)
        except CommandError as exc:
            return _fail(str(exc))
        except (KeyboardInterrupt, EOFError):  # Ctrl-C or Ctrl-D, e.g. at a password prompt
            print("\nagentdesk: cancelled; nothing was changed", file=sys.stderr)
            return 130
        except ArgumentError:
            return _fail(
                "the database URL is not valid; expected e.g. sqlite+pysqlite:///path/to/file "
                "or postgresql+psycopg://user@host/dbname"
            )
        except SchemaTooNew as exc:
            return _fail(f"{exc}; nothing was changed")
        except OperationalError as exc:
            first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            return _fail(f"cannot use the database: {first_line}")

    wrapper.__name__ = run.__name__
    wrapper.__doc__ = run.__doc__
    return wrapper


def database_url(args: argparse.Namespace) -> str:
    url = getattr(args, "database_url", None) or os.environ.get(DATABASE_ENV)
    if url:
        return str(url)
    from ..paths import default_server_database_url

    return default_server_database_url()


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def _database(
    url: str, backup_dir: str | None = None
) -> Iterator[tuple[Engine, str | None, str | None]]:
    """An engine on an upgraded database; yields (engine, revision before, revision after)."""
    from ..models.db import make_engine
    from ..models.migrate import current_revision
    from .sla_backfill import upgrade_and_backfill

    engine = make_engine(url)
    try:
        before = current_revision(engine)
        if backup_dir is not None:
            backup_before_upgrade(url, engine, backup_dir)
        upgrade_and_backfill(engine)
        yield engine, before, current_revision(engine)
    finally:
        engine.dispose()


def backup_before_upgrade(url: str, engine: Engine, directory: str) -> None:
    """``--backup-first DIR``: when the schema is about to change, back the database up into
    DIR first (a new file named after the revision and the time); a current schema needs none.
    Refuses (raises) rather than upgrade without the backup that was asked for."""
    from datetime import UTC, datetime
    from pathlib import Path

    from ..models.migrate import current_revision, head_revision, needs_upgrade
    from .backup import BackupError, backup

    if not needs_upgrade(engine):
        return
    before = current_revision(engine)
    if before is None:
        return  # an empty database: nothing to keep
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(directory) / f"agentdesk-before-{head_revision()}-from-{before}-{stamp}.sqlite3"
    try:
        summary = backup(url, out)
    except BackupError as exc:
        raise CommandError(
            f"backup before the schema upgrade failed: {exc}; the database was not upgraded"
        ) from None
    log.info(
        "schema upgrade %s -> %s: backed up first to %s (%d rows)",
        before,
        head_revision(),
        summary.path,
        summary.total_rows,
    )
    print(
        f"Backed up the database (schema revision {before}) to {summary.path} before "
        f"upgrading it to {head_revision()}.",
        file=sys.stderr,
    )


def _check_line(value: str, what: str, limit: int) -> str:
    if not value.strip():
        raise CommandError(f"{what} must not be empty")
    if len(value) > limit:
        raise CommandError(f"{what} must be at most {limit} characters")
    if _CONTROL.search(value):
        raise CommandError(f"{what} must not contain control characters")
    return value


# --- agentdesk server init -----------------------------------------------------------------------


@_handle
def run_init(args: argparse.Namespace) -> int:
    """Create or upgrade the schema; create the team unless the database already has one."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from sqlalchemy import select

    from ..models import Tenant, TenantCounter
    from ..models.db import make_session_factory, session_scope
    from ..models.versioning import enable_stamping
    from .defaults import create_default_plans

    if args.demo:
        from .demo import DEMO_TIMEZONE

        if args.timezone != DEMO_TIMEZONE:
            raise CommandError(
                f"the demo team's calendars and billing days are in "
                f"{DEMO_TIMEZONE}; leave --timezone out with --demo"
            )
        if args.team_name is not None:
            _check_line(args.team_name, "the team name", 200)
        return _init_demo(args)
    name = _check_line(args.team_name or "Support team", "the team name", 200)
    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CommandError(
            f"unknown time zone {args.timezone!r}; use an IANA name such as America/New_York"
        ) from None
    url = database_url(args)
    with _database(url, getattr(args, "backup_first", None)) as (engine, before, after):
        if before == after:
            print(f"Database {safe_url(url)}: schema is up to date (revision {after}).")
        else:
            print(
                f"Database {safe_url(url)}: schema upgraded from revision "
                f"{before or '(empty)'} to {after}."
            )
        with session_scope(make_session_factory(engine)) as session:
            teams = session.scalars(select(Tenant).order_by(Tenant.created_at)).all()
            if teams:
                listed = ", ".join(repr(t.name) for t in teams)
                exists = "Team {} already exists" if len(teams) == 1 else "Teams {} already exist"
                print(f"{exists.format(listed)}; nothing to create.")
                return 0
            tenant = Tenant(name=name, timezone=args.timezone)
            session.add(tenant)
            session.flush()
            session.add(TenantCounter(tenant_id=tenant.id, version=0))
            session.flush()  # the counter row must exist before stamping takes a version
            plans = []
            if args.default_plans:
                enable_stamping(session, tenant.id)
                plans = [p.name for p in create_default_plans(session, tenant.id)]
        if plans:
            print(f"Created the plans {', '.join(plans)} with their calendars.")
        print(
            f"Created team {name!r} (time zone {args.timezone}). "
            "Next: add people with 'agentdesk user add NAME --role ROLE'."
        )
    return 0


def _init_demo(args: argparse.Namespace) -> int:
    """``server init --demo``: the database's one team is the demo team (renamed if asked),
    so 'user add' puts people into the team that holds the data."""
    from sqlalchemy import select

    from ..models import Tenant
    from ..models.db import make_session_factory, session_scope
    from .demo import generate_demo

    url = database_url(args)
    with _database(url) as (engine, before, after):
        print(
            f"Database {safe_url(url)}: schema at revision {after}"
            + (f" (upgraded from {before or '(empty)'})." if before != after else ".")
        )
        with session_scope(make_session_factory(engine, write=False)) as session:
            teams = session.scalars(select(Tenant).order_by(Tenant.created_at)).all()
            listed = ", ".join(repr(t.name) for t in teams)
        if teams:
            print(
                f"The database already holds {listed}; nothing to create. 'server init "
                "--demo' fills a new database only."
            )
            return 0
        started = time.perf_counter()
        summary = generate_demo(engine, seed=0, tickets=args.tickets)
        if args.team_name is not None:
            with session_scope(make_session_factory(engine)) as session:
                tenant = session.get_one(Tenant, summary.tenant_id)
                tenant.name = args.team_name
        name = args.team_name or summary.team_name
        print(f"Created team {name!r} with demo data in {time.perf_counter() - started:.1f} s.")
    _print_demo(summary)
    print(
        "Next: add people with 'agentdesk user add NAME --role ROLE', or sign in as one of "
        "the demo users above."
    )
    return 0


# --- agentdesk user add --------------------------------------------------------------------------


def _read_password(args: argparse.Namespace, username: str, stdin: TextIO) -> str:
    """From stdin for scripts, else prompted twice without echo."""
    if args.password_stdin or not stdin.isatty():
        line = stdin.readline()
        if not line:
            raise CommandError("no password on standard input")
        return line.rstrip("\r\n")
    import getpass

    first = getpass.getpass(f"Password for {username}: ")
    second = getpass.getpass("Repeat the password: ")
    if first != second:
        raise CommandError("the two passwords do not match; nothing was created")
    return first


def _choose_team(session: Session, wanted: str | None) -> Any:
    from sqlalchemy import select

    from ..models import Tenant

    teams = session.scalars(select(Tenant).order_by(Tenant.created_at)).all()
    if not teams:
        raise CommandError("the database has no team yet; run 'agentdesk server init' first")
    if wanted is not None:
        for team in teams:
            if team.name == wanted:
                return team
        raise CommandError(
            f"no team named {wanted!r}; teams: {', '.join(repr(t.name) for t in teams)}"
        )
    if len(teams) > 1:
        raise CommandError(
            "the database holds several teams; choose one with --team NAME: "
            f"{', '.join(repr(t.name) for t in teams)}"
        )
    return teams[0]


@_handle
def run_user_add(args: argparse.Namespace) -> int:
    """Add one user; refuses duplicates, bad roles and short passwords without changing data."""
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from ..models import Role, User, utcnow
    from ..models.db import make_session_factory, session_scope
    from ..models.versioning import enable_stamping
    from .security import MIN_PASSWORD_LENGTH, hash_password

    username = args.username
    if not _USERNAME.fullmatch(username):
        raise CommandError(
            f"the username must be 1 to 64 letters, digits or . _ @ - (got {username!r})"
        )
    display = _check_line(
        args.display_name if args.display_name is not None else username, "the display name", 200
    )
    email = args.email
    if email is not None:
        _check_line(email, "the email address", 320)
        if email.count("@") != 1 or " " in email or email.startswith("@") or email.endswith("@"):
            raise CommandError(f"not an email address: {email!r}")
    url = database_url(args)
    with _database(url) as (engine, _before, _after):
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            team = _choose_team(session, args.team)
            if session.scalar(select(User.id).where(User.username == username)) is not None:
                raise CommandError(
                    f"the username {username!r} is already taken; nothing was changed"
                )
            team_id, team_name = team.id, team.name
        password = _read_password(args, username, sys.stdin)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise CommandError(
                f"the password must have at least {MIN_PASSWORD_LENGTH} "
                "characters; nothing was created"
            )
        if len(password) > _MAX_PASSWORD:
            raise CommandError(
                f"the password must have at most {_MAX_PASSWORD} characters; nothing was created"
            )
        password_hash = hash_password(password)
        del password
        try:
            with session_scope(factory) as session:
                # Stamped with the team's next version so desktops receive the new colleague.
                enable_stamping(session, team_id)
                session.add(
                    User(
                        tenant_id=team_id,
                        username=username,
                        display_name=display,
                        email=email,
                        role=Role(args.role),
                        active=True,
                        password_hash=password_hash,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:
            raise CommandError(
                f"the username {username!r} is already taken; nothing was changed"
            ) from None
    print(f"Added {username!r} ({args.role}) to team {team_name!r}.")
    return 0


# --- agentdesk demo-data -------------------------------------------------------------------------


@_handle
def run_demo_data(args: argparse.Namespace) -> int:
    """Create the demo team, or report the one already there."""
    from sqlalchemy import select

    from ..models import Tenant
    from ..models.db import make_session_factory, session_scope
    from .demo import DEMO_TEAM_NAME, DemoConflict, generate_demo

    url = database_url(args)
    if not (getattr(args, "database_url", None) or os.environ.get(DATABASE_ENV)):
        from ..paths import data_dir

        print(
            f"Writing into {safe_url(url)}: the database 'agentdesk server' uses when given "
            f"no --database-url. The desktop's local mode keeps its own demo in "
            f"{data_dir() / 'local-server.sqlite3'}."
        )
    started = time.perf_counter()
    with _database(url) as (engine, _before, _after):
        with session_scope(make_session_factory(engine, write=False)) as session:
            others = [
                n
                for n in session.scalars(select(Tenant.name).order_by(Tenant.created_at))
                if n != DEMO_TEAM_NAME
            ]
        if others:
            raise CommandError(
                f"the database already holds the team {others[0]!r}: the demo would be a "
                "second team, whose data that team's people never see. Use a new database, "
                "or create a team with demo data there: agentdesk server init --demo "
                "--team-name NAME. Nothing was changed."
            )
        try:
            summary = generate_demo(engine, seed=args.seed, tickets=args.tickets)
        except DemoConflict as exc:
            raise CommandError(f"{exc} Nothing was changed.") from None
    elapsed = time.perf_counter() - started
    if summary.created:
        print(f"Created the demo team {summary.team_name!r} in {safe_url(url)} in {elapsed:.1f} s:")
    else:
        print(
            f"The demo team {summary.team_name!r} already exists in {safe_url(url)}; "
            "nothing was changed. It holds:"
        )
    _print_demo(summary)
    if not summary.created:
        print("(the passwords are the ones the demo was created with, unless changed since)")
    return 0


def _print_demo(summary: Any) -> None:
    """What a demo team holds, and its public sign-ins."""
    c = summary.counts
    statuses = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in summary.ticket_statuses.items())
    print(
        f"  {c['organisations']} organisations, {c['contacts']} contacts, {c['plans']} plans, "
        f"{c['calendars']} calendars"
    )
    print(f"  {c['tickets']} tickets ({statuses or 'none'})")
    print(f"  {c['ticket_events']} ticket events, {c['waiting_periods']} waiting periods")
    print(
        f"  {c['hour_blocks']} hour blocks, {c['appointments']} appointments, "
        f"{c['time_entries']} time entries"
    )
    print("Demo sign-ins (username / password):")
    width = max(len(u.username) for u in summary.users)
    pwidth = max(len(u.password) for u in summary.users)
    for user in summary.users:
        print(
            f"  {user.username:<{width}} / {user.password:<{pwidth}}  "
            f"{user.display_name}, {user.duty}"
        )


# --- agentdesk server backfill-sla ---------------------------------------------------------------


@_handle
def run_backfill_sla(args: argparse.Namespace) -> int:
    """Fill the stored SLA instants that older tickets lack (idempotent)."""
    from ..models.db import make_engine
    from ..models.migrate import upgrade
    from .sla_backfill import backfill_sla

    url = database_url(args)
    engine = make_engine(url)
    try:
        upgrade(engine)
        changed = backfill_sla(engine)
    finally:
        engine.dispose()
    print(f"Stored SLA instants computed for {changed} ticket(s) in {safe_url(url)}.")
    return 0


# --- agentdesk server ----------------------------------------------------------------------------


def run_server(args: argparse.Namespace) -> int:
    """Serve the API until SIGINT/SIGTERM, then shut down gracefully and exit 0."""
    import logging.config
    import signal
    from dataclasses import replace
    from datetime import timedelta

    import uvicorn
    from sqlalchemy.exc import ArgumentError, OperationalError

    from .. import __version__
    from ..models.migrate import SchemaTooNew
    from .app import create_app
    from .logs import logging_config
    from .notifications.config import SmtpConfig, SmtpConfigError
    from .serving import AgentDeskServer, proxy_options
    from .settings import ServerSettings, SettingError, max_db_connections_from_env

    # Refused settings end the command before it touches the process's logging.
    try:
        smtp = SmtpConfig.from_env()
        budget = args.max_db_connections
        if budget is None:
            budget = max_db_connections_from_env()
    except SmtpConfigError as exc:
        return _fail(
            f"{exc}; the server did not start (unset AGENTDESK_SMTP_HOST to keep "
            "notifications queued without sending them)"
        )
    except SettingError as exc:
        return _fail(f"{exc}; the server did not start")
    logging.config.dictConfig(logging_config(args.log_level, args.log_format))
    url = database_url(args)
    try:
        shown = safe_url(url)
        log.info("AgentDesk server %s starting; database %s", __version__, shown)
        if args.backup_first:
            from ..models.db import make_engine

            engine = make_engine(url)
            try:
                backup_before_upgrade(url, engine, args.backup_first)
            finally:
                engine.dispose()
        settings = ServerSettings(
            database_url=url,
            smtp=smtp,
            trusted_proxies=tuple(args.trusted_proxy or ()),
            expiry_check_interval=timedelta(hours=1),
        )
        if budget is not None:  # else the settings' default, stated once
            settings = replace(settings, max_db_connections=budget)
        app = create_app(settings)
    except CommandError as exc:
        return _fail(str(exc))
    except SchemaTooNew as exc:
        return _fail(f"{exc}; the server did not start and nothing was changed")
    except ArgumentError:
        return _fail(
            "the database URL is not valid; expected e.g. sqlite+pysqlite:///path "
            "or postgresql+psycopg://user@host/dbname"
        )
    except OperationalError as exc:
        first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return _fail(f"cannot use the database {shown}: {first_line}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "listening on %s: serve the API to other machines only behind a TLS "
            "reverse proxy (sign-in sends passwords)",
            args.host,
        )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        log_level=args.log_level,
        access_log=False,
        server_header=False,
        lifespan="on",
        **proxy_options(app.state.agentdesk.settings),  # type: ignore[arg-type]
    )
    server = AgentDeskServer(config, app)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal against the
    # handlers it found; with these no-ops in place the process ends with status 0, as a
    # service manager expects from a clean stop.
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot bind (port in use, bad address)
        if exc.code not in (0, None):
            return _fail(f"could not serve on {args.host}:{args.port} (see the log above)")
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        app.state.engine.dispose()
    if not server.started:
        return _fail(f"could not serve on {args.host}:{args.port} (see the log above)")
    log.info("AgentDesk server stopped")
    return 0


def _ignore(_signum: int, _frame: Any) -> None:
    """Stands in for the default handlers while uvicorn owns shutdown."""
