"""The HTTP entry point: the FastAPI application, its dependencies and error pages."""
