"""The HTTP API: routes, wire schemas, authentication, and the one error mapper."""
