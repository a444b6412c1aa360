"""Long-running loops: the relay (store to bus), the projector (bus to views), the saga."""
