"""The write model: aggregates, their events, commands and the use cases. No I/O."""
