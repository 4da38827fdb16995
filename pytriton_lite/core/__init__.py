"""The engine: transport-agnostic. Never imports starlette, uvicorn, grpc or protocol/; of tritonclient only the
generated ``model_config_pb2`` messages (the served config is Triton's ModelConfig). See docs/architecture.md."""
