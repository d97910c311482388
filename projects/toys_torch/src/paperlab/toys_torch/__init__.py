"""Toy tasks 7, 8 and 13 in PyTorch: sonnet SFT, beam search, red-teaming (see README.md)."""
