"""Transports: the v2 HTTP (starlette/uvicorn), gRPC (grpc.aio) and metrics front ends over core.dataplane."""
