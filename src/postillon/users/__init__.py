"""Users: the marketers and sales people who work in Postillon and own contacts."""
