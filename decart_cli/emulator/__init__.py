"""A faithful local emulator of Decart's realtime API (``decart serve``). Never imports commands."""
