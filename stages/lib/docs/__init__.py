"""The parts of README.md and docs/ that are generated: tables rendered from metrics/ and the params reference.

`python -m stages.docs` rewrites them in place; `python -m stages.docs --check` says which file is stale.
"""
