"""Library modules shared by the stages.

None of them reads params.yaml: they take typed arguments, so each can be
tested alone and reused under another executor.
"""
