"""Outputs written whole or not at all: under a temporary name beside the target, flushed to
disk, then moved into place. A full disk, a file size limit or a kill leaves either the old
file or none, never half a file (``keygen`` once left a 0-byte key on a full disk).

A failure to write is raised as :class:`WriteError` naming the output the user asked for (not
the temporary name), so the command line can say which file and why in one line.
"""

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


class WriteError(OSError):
    """An output could not be written; ``filename`` is the output the user named."""


@contextmanager
def writing(output: Path) -> Iterator[None]:
    """Report any failure to write inside the block as a :class:`WriteError` on ``output``.

    A refusal to overwrite (FileExistsError) passes through: callers say that in their own
    words."""
    try:
        yield
    except (WriteError, FileExistsError):
        raise
    except OSError as problem:
        raise WriteError(problem.errno, problem.strerror, str(output)) from None


def write_atomically(path: Path, data: bytes | str, mode: int = 0o644,
                     overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` with file mode ``mode`` under a temporary name in the same
    folder, then move it into place. With ``overwrite`` False an existing ``path`` is left as
    it is and FileExistsError raised (the move is then a hard link, which never replaces)."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with writing(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # a file where a folder should be: not "exists already"
            raise WriteError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path)) from None
        # mkstemp makes the file readable by its owner only, before a byte is written
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial",
                                                 dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                os.fchmod(handle.fileno(), mode)
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())  # on disk before it takes the real name
            if overwrite:
                os.replace(temporary, path)
            else:
                os.link(temporary, path)
        finally:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
