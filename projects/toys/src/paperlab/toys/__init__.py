"""Toy tasks in JAX: one self-contained module per task (``python -m paperlab.toys.<task>``)."""
