"""The GPT model, its checkpoints, decoding and export."""
