"""Public figures, the open-data export and the agencies' scorecard (issue 22)."""
