"""The mesh of the chapter: framed TCP connections, a reconnecting client,
the service base class, the distributor (registry) and the HTTP gateway."""
