"""The HTTP edge: ``domainrag serve`` (FastAPI on Uvicorn)."""
