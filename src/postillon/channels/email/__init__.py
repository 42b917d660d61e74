"""Email delivery: the provider protocol and its implementations."""
