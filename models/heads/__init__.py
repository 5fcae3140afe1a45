"""Stage 3: task adapters on the pretrained hybrid encoder (segmentation, classification, grading,
prognosis), each trainable as a frozen-encoder probe or by fine-tuning. No dagster here."""
