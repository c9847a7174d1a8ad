"""loopwise.integrations."""
