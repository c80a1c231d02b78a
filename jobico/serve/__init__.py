"""The listener: the HTTP app that takes tenants' events (no Ray) and the Serve deployment that
runs it on replicas (`listener.py`, the one module here that imports Ray)."""
