"""Colour management and colour matching."""
