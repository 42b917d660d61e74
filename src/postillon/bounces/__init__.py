"""Bounces and complaints: the inbound SMTP server for DSNs and ARF reports."""
