"""The one error type the rules engine raises for bad input.

It subclasses ``ValueError`` so callers that only know the standard library still catch it, and
carries the name of the offending field so a form, an API response or an import report can point
at exactly what is wrong.
"""

from __future__ import annotations


class PolicyError(ValueError):
    """Invalid input to a rule. ``field`` names what is wrong (dotted path into the input)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")
