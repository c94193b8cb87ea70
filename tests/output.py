"""What a command said, with the console's line wrapping undone: rich wraps long lines at any
space, so a message is compared with its words joined by single spaces."""


def said(result) -> str:
    """The output of a CliRunner result, whitespace collapsed."""
    return " ".join(result.output.split())
