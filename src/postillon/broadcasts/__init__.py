"""Broadcasts (newsletters): a template or A/B variants to an audience, now or scheduled."""
