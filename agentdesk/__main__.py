"""``python -m agentdesk`` and the PyInstaller entry point (absolute import: a frozen entry
script has no parent package)."""

import sys

from agentdesk.cli import main

sys.exit(main())
