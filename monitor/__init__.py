"""monitor: a self-hosted social media and review sentiment monitor."""

__version__ = "0.1.0"
