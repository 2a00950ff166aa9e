"""Sentence encoders: SimCSE on NLI, cosine regression on STS, embedding distillation, KorSTS evaluation."""
