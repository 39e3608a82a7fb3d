"""User errors: bad input the user can fix (a file, a row, a config key, a model folder), as opposed to bugs.

Every reader in the core raises a ``UserError`` subclass whose message names where the problem is (file, line or
row, field or config key) and how to fix it. The CLI turns any ``UserError`` into a few lines on stderr and exit
code 2 (``grm --debug ...`` or ``GRM_DEBUG=1`` shows the traceback); any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad user input; ``str(exc)`` is the complete message (location, problem, fix).

    Args:
        message: what is wrong (and, ideally, the fix).
        path: the file or folder at fault, if any (prefixed to the message as ``path:line:``).
        line: 1-based line (or row/record) in ``path``.
        field: the field or config key at fault.
        fix: how to fix it (appended as ``fix: ...``).

    Example:
        >>> str(UserError("not valid UTF-8", path="a.jsonl", line=3, fix="re-save the file as UTF-8"))
        'a.jsonl:3: not valid UTF-8\\n  fix: re-save the file as UTF-8'
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        fix: str | None = None,
    ):
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.fix = fix
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        text = f"{where}{field + ': ' if field else ''}{message}"
        if fix:
            text += f"\n  fix: {fix}"
        super().__init__(text)

    def __reduce__(self) -> tuple:  # type: ignore[type-arg]
        # pickle by state, not by re-calling __init__ (subclasses take other arguments): crosses process/Prefect
        # boundaries with the message and every attribute intact
        return (self.__class__.__new__, (self.__class__,), {**self.__dict__, "args": self.args})


class InputFileError(UserError, ValueError):
    """A file cannot be read as text of the expected kind (encoding, compression, a folder, bad framing)."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""

    def __str__(self) -> str:  # FileNotFoundError.__str__ would show errno formatting
        return str(self.args[0])


class ModelFolderError(UserError, ValueError):
    """A model folder is missing, incomplete or corrupt (config, tokenizer or weights)."""


class MissingModelFilesError(ModelFolderError, FileNotFoundError):
    """A model folder, or the weights inside it, does not exist."""

    def __str__(self) -> str:
        return str(self.args[0])
