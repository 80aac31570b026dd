"""The HTTP server (python -m stages.serve): OpenAI-style routes over the one decoding loop, and the chat page.

schema.py checks requests and shapes errors, batcher.py decodes concurrent requests as rows of one batch,
app.py holds the routes; static/ is the chat page, the only files the server serves.
"""
