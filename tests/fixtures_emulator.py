"""Emulator fixtures (filled in with the emulator)."""
