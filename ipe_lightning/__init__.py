"""IPE-LIIF arbitrary-scale super-resolution: models, data, metrics and the Lightning suite."""

__version__ = "0.1.0"
