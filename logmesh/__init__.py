"""logmesh: a microservice mesh whose log-management service keeps every request."""

__version__ = "0.1.0"
