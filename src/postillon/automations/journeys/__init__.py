"""The journey engine: entry, the step executor, waits, goals and exits."""
