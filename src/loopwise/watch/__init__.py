"""loopwise.watch."""
