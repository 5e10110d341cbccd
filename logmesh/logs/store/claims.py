"""Who may remove a sealed segment right now: its compactor or retention, never both at once.

With ``--workers 2``, worker 1 compacts its own segments while worker 0's retention runs over
the whole store. Retention deleted a segment worker 1 had just read, and worker 1's Parquet
file of it appeared after the deletion: its events were counted deleted and were still there,
kept a retention longer, and counted deleted a second time when that file went. Now each
takes an exclusive ``flock`` on the segment file before it reads or deletes it; whoever finds
it held leaves the segment alone this pass (the compactor: retention is deleting it;
retention: it is being compacted, and its Parquet file is retention's next pass). A lock taken
on a file already unlinked (the other one finished with it) is no claim either. The lock dies
with its holder's file descriptor, so a kill -9 leaves nothing held.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def claim(path: Path) -> Iterator[bool]:
    """True while this thread alone may read, compact and remove the segment ``path``;
    False when another holds it or it was removed. Raises FileNotFoundError when it is gone."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield os.fstat(fd).st_nlink > 0  # 0: removed by the one that held it before us
    finally:
        os.close(fd)  # releases the lock
