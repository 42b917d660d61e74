"""Ingestion and identity: the Segment-compatible tracking API, the browser snippet,
anonymous visitors and how they become known contacts."""
