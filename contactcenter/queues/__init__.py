"""Queues as the admin configured them: one directory per process that every part reads."""
