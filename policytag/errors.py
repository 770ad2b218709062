"""Errors a user can fix. Each message says what went wrong and what to do."""


class PolicytagError(Exception):
    """Base class for errors reported to the user without a traceback."""


class InputError(PolicytagError):
    """A document or data file cannot be read (empty, wrong type, no text layer, bad encoding)."""


class UnknownLabelError(PolicytagError, ValueError):
    """A data file names a label id that the taxonomy does not define."""

    def __init__(self, label_id: str, dimension: str, where: str = "", known: list[str] | None = None):
        self.label_id = label_id
        self.dimension = dimension
        self.where = where
        loc = f"{where}: " if where else ""
        hint = f" Known {dimension} ids: {', '.join(known)}." if known else ""
        super().__init__(f"{loc}unknown {dimension} id {label_id!r}.{hint}")


class ModelNotFoundError(PolicytagError):
    """No model directory (or base model) can be found or loaded."""


class ConfigError(PolicytagError):
    """A config file or a ``--set`` override names an unknown key or has a value of the wrong type."""
