"""Chat exports to datasets, LoRA training, the prompt-only persona, merging and evaluation."""
