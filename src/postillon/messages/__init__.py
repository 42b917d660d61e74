"""Messages: the outbox every channel sends from, signed links, tracking and statistics."""
