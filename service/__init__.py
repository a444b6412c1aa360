"""The composition root and the process runner: builds the system from the settings, runs its
roles, and the server side of the ``smq`` command line. Above every other package."""
