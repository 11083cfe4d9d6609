"""Pure protocol core: standard library only, no I/O, no clocks, no asyncio.

A layering test (tests/test_layering.py) fails if any module here imports outside the stdlib.
"""
