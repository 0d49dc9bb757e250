"""The sync protocol: wire format, mutators (one definition, run optimistically on the desktop
and authoritatively on the server), and the desktop's replica, outbox and client."""
