"""Tokenizers: one interface over HF tokenizers and SentencePiece."""
