"""Documents and the data stages' library: reading sources, cleaning, filters, dedupe, shards."""
