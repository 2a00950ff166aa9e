"""Task-specific distillation: a fine-tuned teacher's logits into a small student (a BiLSTM or a DistilBERT)."""
