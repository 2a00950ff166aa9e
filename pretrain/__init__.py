"""DistilKoBERT pretraining: tokenizer building, corpus preparation and distillation."""
