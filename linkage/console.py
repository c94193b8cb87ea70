"""Messages to the person at the terminal: progress and errors on stderr, never a traceback."""

import errno

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)

# what an operating system failure means for the person at the terminal, by errno
_REASONS = {
    errno.ENOSPC: "the disk is full; free some space and run the command again",
    errno.EDQUOT: "the disk quota is used up; free some space and run the command again",
    errno.EFBIG: "the file would be larger than this system allows (a file size limit); "
                 "raise the limit or write elsewhere",
    errno.EROFS: "the folder is on a read-only file system; choose a writable folder",
    errno.EACCES: "permission denied; choose a folder you may write to",
    errno.EPERM: "permission denied; choose a folder you may write to",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOENT: "no such file or folder",
}


def fail(message: str) -> None:
    """Print a user error (never a traceback) and exit 1."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(1)


def os_error_message(problem: OSError) -> str:
    """One line for an operating system failure: the file, what went wrong and what to do.

    A failed write (:class:`linkage.atomic.WriteError`) also says that nothing was left
    half-written, which :mod:`linkage.atomic` guarantees."""
    from linkage.atomic import WriteError

    reason = _REASONS.get(problem.errno, problem.strerror or type(problem).__name__)
    where = problem.filename if problem.filename is not None else "a file"
    if isinstance(problem, WriteError):
        return f"{where}: cannot be written: {reason} (nothing was left half-written)"
    return f"{where}: {reason}"


# how DuckDB words an operating system failure it met while writing
_DATABASE_WORDS = {"No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
                   "File too large": errno.EFBIG, "Read-only file system": errno.EROFS,
                   "Permission denied": errno.EACCES}


def database_error_message(path: object, problem: BaseException) -> str:
    """One line for a DuckDB failure while writing the database ``path`` (a spine): the
    operating system's reason when one caused it, such as a full disk (DuckDB then fails to
    commit and its rollback fails too, so the whole chain is read). DuckDB's own text is never
    shown: it may quote values. Its transaction leaves the previous version as it was."""
    kind, texts, cause = type(problem).__name__, [], problem
    while cause is not None:
        texts.append(str(cause))
        cause = cause.__context__
    reason = next((_REASONS[number] for words, number in _DATABASE_WORDS.items()
                   if any(words in text for text in texts)), f"a database error ({kind})")
    return f"{path}: cannot be written: {reason} (its previous version is unchanged)"
