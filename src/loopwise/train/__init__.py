"""loopwise.train."""
