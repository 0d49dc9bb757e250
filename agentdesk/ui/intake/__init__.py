"""Logging a phone call or chat as a ticket from the desktop."""
