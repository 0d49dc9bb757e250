"""AgentDesk: a desktop workstation for customer-support teams."""

__version__ = "0.1.0"
