"""Lifecycle stages: the ordered pipeline, contacts' stages and their history."""
