"""ci-env: per-job Docker credentials, CI registry login and safe registry cleanup."""

__version__ = "1.0.0"
