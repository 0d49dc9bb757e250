"""The consultants' workbench: contracts and hour balances, a timesheet, appointments, and the
customer's time statement (issue 11). Thin Qt adapters over :mod:`agentdesk.queries`."""
