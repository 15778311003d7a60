"""The OpenAI-compatible HTTP daemon: request schema, the engine that owns the models, routes, service install."""
