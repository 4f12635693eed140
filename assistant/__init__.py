"""assistant: a private personal assistant on one desktop, running a small local model."""

__version__ = "0.1.0"
