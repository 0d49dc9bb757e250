"""File formats for what the read side computes (CSV, PDF): Qt-free, so the CLI and the server
render exactly what the desktop exports."""
