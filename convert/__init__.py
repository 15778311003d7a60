"""Hugging Face checkpoints to GGUF (gguf-py), tokenizer export, and quantization through llama.cpp.

The entry point is `convert(ConvertConfig(...)) -> ConvertResult` (what `twin convert` runs);
`report(result)` is the text it prints.
"""

from convert.pipeline import ConvertConfig, ConvertResult, QuantMeasure, convert, report

__all__ = ["ConvertConfig", "ConvertResult", "QuantMeasure", "convert", "report"]
