"""The ``agentdesk`` command: the desktop app by default, subcommands for the backend.

Subcommands import their layer lazily so ``agentdesk --help`` stays fast and a server host
never needs Qt loaded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentdesk",
        description=(
            "AgentDesk, the support team's workstation. With no subcommand, starts the desktop "
            "app (local mode with demo data when no server is configured)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"agentdesk {__version__}")
    parser.add_argument(
        "--server", metavar="URL", help="connect the desktop to a team server at URL"
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation headless: local mode with demo data in a temporary "
        "directory, the main window, one sync round; prints a short report, exit 0 if OK",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    from .server.cli import add_server_commands  # stdlib-only at import; the rest loads per command

    add_server_commands(commands)
    from .exports.cli import add_report_commands

    add_report_commands(commands)
    return parser


#: What `agentdesk[desktop]` adds (pyproject.toml); a server-only install lacks them.
_DESKTOP_EXTRA = frozenset({"PySide6", "shiboken6", "keyring", "requests"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.self_test:
        from .selftest import run_self_test

        return run_self_test()
    if args.command is None:
        try:
            from .desktop import main as run_desktop
        except ModuleNotFoundError as exc:  # a server-only install: `agentdesk[server]`
            if (exc.name or "").split(".")[0] not in _DESKTOP_EXTRA:
                raise
            print(
                f"agentdesk: the desktop needs {exc.name}, which is not installed: "
                "pip install 'agentdesk[desktop]'",
                file=sys.stderr,
            )
            return 2
        return run_desktop(server=args.server)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    parser.error(f"unknown command {args.command!r}")
    return 2  # pragma: no cover - parser.error exits


if __name__ == "__main__":
    sys.exit(main())
