"""Authentication: API keys with a scope."""
