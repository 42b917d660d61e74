"""Delivery channels: one package per channel, one module per provider."""
