"""contactcenter: an open-source 3-1-1 contact center backend on Asterisk."""

__version__ = "0.1.0"
