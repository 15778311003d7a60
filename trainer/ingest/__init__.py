"""`twin ingest`: chat exports (one module per format in formats/) to the dataset; the recipe is run.py."""
