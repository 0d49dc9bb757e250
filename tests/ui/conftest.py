"""Every desktop test runs the mutation writer inline (tests/ui/test_mutation_writer.py turns it
back to its worker thread)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _inline_writer(inline_writer: None) -> None:
    """A click's mutation is applied before the click returns (``inline_writer``)."""
