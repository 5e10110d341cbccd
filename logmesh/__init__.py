"""logmesh: a microservice mesh whose log service keeps every request."""

__version__ = "0.1.0"

__all__ = ["LogHandler", "__version__"]


def __getattr__(name: str):  # lazy: `import logmesh` stays cheap for the CLI
    if name == "LogHandler":
        from .shipping.handler import LogHandler

        return LogHandler
    raise AttributeError(name)
