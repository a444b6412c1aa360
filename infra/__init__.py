"""Adapters and the composition root: settings, stores, bus, embedded servers, command line."""
