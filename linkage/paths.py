"""Checks of the paths a command is given, made before it does any work: a spine that is a
folder, an output folder that already holds something, an input that is not there. Each
problem is a :class:`PathProblem` whose message names the path and says what to give instead.
"""

from pathlib import Path


class PathProblem(ValueError):
    """A path given to a command cannot be used as asked; the message names it."""


def _writable_place(path: Path) -> None:
    """The nearest existing folder above ``path`` is a folder (the rest is made on the way)."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise PathProblem(f"{path}: cannot be made, because {parent} is a file, not a "
                                  "folder")
            return


def new_folder(out: Path, what: str) -> None:
    """``out`` may receive ``what`` (such as "a synthetic world"): it does not exist yet, or is
    an empty folder. Something already there is never written over."""
    if out.exists() and not out.is_dir():
        raise PathProblem(f"{out}: exists and is a file; {what} is written to a new folder: "
                          "choose another --out")
    if out.is_dir() and any(out.iterdir()):
        raise PathProblem(f"{out}: exists and is not empty; {what} is never written over an "
                          "existing folder: choose a new --out, or empty this one")
    _writable_place(out)


def new_file(out: Path, what: str) -> None:
    """``out`` may be written as the file ``what`` (replacing an older file of that name)."""
    if out.is_dir():
        raise PathProblem(f"{out}: is a folder; {what} is a file: give a file name, such as "
                          f"{out / 'report.html'}")
    _writable_place(out)


def spine_file(spine: Path, must_exist: bool) -> None:
    """``spine`` names a spine's DuckDB file: not a folder; one that exists when the command
    reads a spine (``must_exist``), or may be made when it links one."""
    if spine.is_dir():
        raise PathProblem(f"{spine}: is a folder; --spine is the spine's DuckDB file, such as "
                          f"{spine / 'spine.duckdb'}")
    if must_exist and not spine.is_file():
        raise PathProblem(f"{spine}: no such spine (run linkage link to make one)")
    _writable_place(spine)


def existing(paths: list[Path], what: str, folder: bool) -> None:
    """Each of ``paths`` (inputs of kind ``what``, such as "a bundle") exists, and is a folder
    (``folder``) or a file."""
    for path in paths:
        if not path.exists():
            raise PathProblem(f"{path}: no such {'folder' if folder else 'file'} ({what})")
        if path.is_dir() != folder:
            found, wanted = ("a file", "folder") if folder else ("a folder", "file")
            raise PathProblem(f"{path}: is {found}; give {what} {wanted}")
