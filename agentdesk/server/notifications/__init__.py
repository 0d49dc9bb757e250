"""What customers hear back: the outbox written with each change, its templates, and the SMTP
sender that delivers it exactly once per recipient."""
