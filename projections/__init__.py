"""Read models: pure functions from events to view changes, and their writers."""
