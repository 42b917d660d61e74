"""Automations: rules and journeys. For now, the hooks other features call into."""
