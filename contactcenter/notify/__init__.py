"""Citizens hear back: e-mail and SMS on every public change of their case, an opt-out link,
and the agencies' daily digest of at-risk and overdue cases."""
