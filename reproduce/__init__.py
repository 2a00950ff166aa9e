"""The whole DistilKoBERT recipe in one command: python -m reproduce --preset mini --output_dir runs/mini."""
