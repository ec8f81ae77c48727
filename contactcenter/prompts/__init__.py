"""Prompts as sound: speech from words, admins' recordings, and delivery to Asterisk."""
