"""Chat exports to datasets (ingest/), LoRA training (train/), the prompt-only persona (persona/) and evaluation (evaluation/)."""
