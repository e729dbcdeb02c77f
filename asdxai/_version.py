"""The package version (read by pyproject.toml and ``asdxai --version``)."""

__version__ = "0.1.0"
