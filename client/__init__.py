"""The ``smq`` commands that talk to a running service over its HTTP API (``SMQ_URL``)."""
