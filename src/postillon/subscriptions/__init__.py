"""Subscriptions: preference topics, unsubscribe, the preference page, double opt-in, and
the check of who may be mailed."""
