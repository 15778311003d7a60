"""The prompt-only twin: a system prompt made of my measured style and a few exchanges; built by run.py."""
