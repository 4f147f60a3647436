"""Scheduled jobs: each a function of (db, settings, now) that the scheduled function and a script call."""
