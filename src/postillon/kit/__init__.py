"""Shared infrastructure: database engine and types, ids, pagination."""
