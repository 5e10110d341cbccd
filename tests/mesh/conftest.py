from tests.support.mesh import mesh  # noqa: F401  (the fixture)
