"""The audit log of admin changes (log.py)."""
