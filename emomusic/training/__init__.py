"""Data loading, training loops and distillation; nothing here is imported at inference time."""
