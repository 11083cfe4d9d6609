"""The only package that imports Rich (enforced by ruff's banned-api and tests/test_layering.py)."""
