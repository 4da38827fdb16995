"""Transports over the ``core.api.DataPlane`` seam: v2 HTTP (a plain ASGI app on uvicorn), gRPC (grpc.aio), metrics.

Each front end decodes with a ``protocol`` codec, calls the data plane and encodes what it returns; none imports
another. See docs/architecture.md.
"""
