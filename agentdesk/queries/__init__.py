"""The Qt-free read side: what the desktop, the server and the CLI show, computed once.

Each module holds one kind of read model (queue pages, ticket card, contact facts, timesheets,
statements, dashboard figures): plain functions over a SQLAlchemy session that return frozen
dataclasses. Qt models and widgets in ``agentdesk.ui`` are thin adapters over these; the server
and the CLI call the same functions, so a figure is computed one way wherever it is shown.

Never imports Qt, nor ``agentdesk.server``, nor the desktop side of ``agentdesk.sync``.
"""
