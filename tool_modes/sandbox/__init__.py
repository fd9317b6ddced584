"""The JavaScript sandbox behind `tool_modes.code`: limits, worker processes, the typed API.

`worker.py` runs inside each worker process as a plain script (standard library and the
QuickJS extension only); everything else here runs in the server.
"""
