"""twin: learn how you write from your chat exports and serve a local model that answers like you."""

__version__ = "0.1.0"
