"""brainfm: the domain core of the brain-MRI foundation-model pipeline (no Dagster, no PyTorch)."""

__version__ = "0.1.0"
