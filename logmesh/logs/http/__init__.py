"""The logs service's HTTP handlers, given narrow dependencies by logs/server.py."""
