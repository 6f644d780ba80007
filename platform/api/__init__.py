"""The FastAPI application: routers only — translation between HTTP and the domain packages."""
