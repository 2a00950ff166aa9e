"""Release a model to the Hugging Face Hub: weights, tokenizer, remote code and a model card, validated first."""
