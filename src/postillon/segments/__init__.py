"""Segments: stored filters whose members are kept current (see ARCHITECTURE.md)."""
