"""Executors of the data stages, side by side: `local_<stage>` (this machine) and `ray_<stage>` (Ray Data).

Both modules of a stage expose the same functions with the same signatures
(merge: `write_blocks`, clean: `cleaned`, pack: `write_shards`) and
run the same blocks from stages/lib/data, so their outputs are byte for byte
the same. A stage imports the one its `<stage>.engine` param names, and Ray
only when that is ray; ray_session.py is what every Ray engine shares.
"""
