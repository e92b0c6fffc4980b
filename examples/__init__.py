"""Runnable examples of hexa (the demo application: never installed)."""
