"""Test support shared across test packages, loaded as pytest plugins by ``tests/conftest.py``.

Conftests stay local to their directory; anything another directory needs lives here, so no
conftest imports another. Tests import helpers (``Desk``, ``Team``, ...) from these modules.
"""
