"""Pipeline stages: each module is one `python -m stages.<name>` step of dvc.yaml.

Shared logic lives in `stages.lib`; no stage imports another stage.
"""
