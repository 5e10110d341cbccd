"""The one shape every server of the mesh has: ``start``, ``stop``, ``serve_forever``."""

from __future__ import annotations

import asyncio


class Serving:
    """Subclasses implement ``start`` and ``stop``; the CLI runs ``serve_forever``.

    ``serve_forever`` returns only when cancelled (the CLI cancels it on
    SIGTERM/SIGINT), and always stops the server on the way out.
    """

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()
