"""The rules engine: pure functions and value objects, no I/O, no Qt, no SQL.

Everything here comes from the four support-policy documents (``docs/policies/``): business
calendars and SLA clocks, queue order, entitlements, validated contacts and billable time. The
desktop runs these rules optimistically and the server runs them authoritatively, so they must
be deterministic and free of side effects.
"""
