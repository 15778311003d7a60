"""`twin eval`: how much a twin sounds like its person, measured on the validation split.

Perplexity of the real replies, ROUGE-L and chrF of generated replies against
them, style distance, and the human ratings of `twin chat --rate`, for each
variant (prompt-only persona, merged LoRA, served GGUF), written to
`twins/<name>/eval/`. The entry point is `trainer.evaluation.run.evaluate`.
"""
