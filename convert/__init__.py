"""Hugging Face checkpoints to GGUF (gguf-py), tokenizer export, and quantization through llama.cpp."""
