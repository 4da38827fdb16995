"""The engine: transport-agnostic. Never imports starlette, uvicorn, grpc, tritonclient or protocol/."""
