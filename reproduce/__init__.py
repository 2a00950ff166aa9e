"""The whole DistilKoBERT recipe in one command: python -m reproduce --preset mini --output runs/mini."""
