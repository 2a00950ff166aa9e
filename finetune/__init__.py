"""Fine-tuning and evaluation on NSMC, Naver NER and KorQuAD 1.0, and the sub-task table."""
