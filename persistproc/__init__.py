"""persistproc: run development processes under pseudo-terminals for people and AI agents."""

__version__ = "0.1.0"
