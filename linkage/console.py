"""Messages to the person at the terminal: progress and errors on stderr, never a traceback."""

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)


def fail(message: str) -> None:
    """Print a user error (never a traceback) and exit 1."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(1)
