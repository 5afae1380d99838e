"""Alerts: rules.py (pure matching), channels.py (delivery), outbox.py (retrying sender)."""
