"""Contacts: who Postillon knows, their attributes, tags, consent and timeline."""
