"""loopwise.export."""
