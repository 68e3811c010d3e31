"""The version of otel_memory: pyproject.toml reads it from here, the meter reports it."""

__version__ = "0.1.0"
