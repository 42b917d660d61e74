"""Frequency caps: at most so many marketing messages per contact and local day or week
on a channel (`service.py`, the API in `endpoints.py`); `collision.SendGate` applies them."""
