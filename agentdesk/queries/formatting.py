"""Amounts as people read them: one rule for every price and charge the desktop shows."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["money_text"]


def money_text(amount: Decimal) -> str:
    """``Decimal("1250.5")`` -> "1,250.50"."""
    return f"{amount:,.2f}"
