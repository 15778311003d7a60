"""The Textual chat client: talks to the daemon over HTTP, never loads a model."""
