"""Computed traits: purchase totals, RFM and engagement, computed from events for all
contacts by the worker and kept in `contact_traits`."""
