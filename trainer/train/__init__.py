"""`twin train`: LoRA fine-tuning on the dataset, checkpoints, the merged model; the recipe is run.py."""
