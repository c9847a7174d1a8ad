"""loopwise.view."""
