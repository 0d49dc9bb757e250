"""Who may see what of the 1-on-1 business: prices, balances and the customer's statement.

The server (its routes and what it syncs to each desktop), the desktop's screens and the
statement dialog ask these, so a role sees the same thing everywhere (issue 11: agents see no
prices; only the roles that see them export a statement).
"""

from __future__ import annotations

from ..models import Role

__all__ = ["STATEMENT_READERS", "may_see_prices", "statement_refusal"]


def may_see_prices(role: Role) -> bool:
    """What customers paid is for consultants, leads and admins, not for agents."""
    return role in (Role.CONSULTANT, Role.LEAD, Role.ADMIN)


#: Who may have a customer's statement. It is the customer's bill (hours bought, used, forfeited
#: and owed), so it goes to the roles that see prices.
STATEMENT_READERS = frozenset(r for r in Role if may_see_prices(r))


def statement_refusal(role: Role | None) -> str | None:
    """Why someone in ``role`` (None: nobody signed in) gets no statement, worded for the middle
    of a sentence; None if they may have one."""
    if role is not None and role in STATEMENT_READERS:
        return None
    readers = [f"{r.value}s" for r in Role if r in STATEMENT_READERS]
    return (
        f"only {', '.join(readers[:-1])} and {readers[-1]} export time statements "
        "(a statement is the customer's bill: hours bought, used and owed)"
    )
