"""Engines other than the local process pool for the data stages (Ray Data)."""
