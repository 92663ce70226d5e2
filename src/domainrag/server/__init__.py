"""``domainrag serve``: the HTTP edge (FastAPI on Uvicorn, extra ``[server]``). Build the
application with :func:`domainrag.server.app.create_app`; nothing here is imported by
``import domainrag``."""
