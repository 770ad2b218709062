"""Errors a user can fix. Each message says what went wrong and what to do."""


class PolicytagError(Exception):
    """Base class for errors reported to the user without a traceback."""


class InputError(PolicytagError):
    """A document or data file cannot be read (empty, wrong type, no text layer, bad encoding)."""


class UnknownLabelError(PolicytagError, ValueError):
    """A data file names a label id that the taxonomy does not define."""

    def __init__(self, label_id: str, dimension: str, where: str = "", known: list[str] | None = None,
                 belongs_to: str | None = None):
        """``belongs_to``: the other dimension (``measures``) when ``label_id`` is one of its ids,
        i.e. the id is known but sits in the wrong column."""
        self.label_id = label_id
        self.dimension = dimension
        self.where = where
        self.belongs_to = belongs_to
        loc = f"{where}: " if where else ""
        if belongs_to:
            other = belongs_to[:-1] if belongs_to.endswith("s") else belongs_to
            here = dimension if dimension.endswith("s") else dimension + "s"
            #: the message without the location, e.g. for a per-row import report
            self.reason = f"`{label_id}` is a {other} id, not a {here[:-1]} id; put it in the {belongs_to} column"
            super().__init__(f"{loc}{self.reason}")
            return
        self.reason = f"unknown {dimension} id {label_id!r}"
        hint = f" Known {dimension} ids: {', '.join(known)}." if known else ""
        super().__init__(f"{loc}{self.reason}.{hint}")


class ModelNotFoundError(PolicytagError):
    """No model directory (or base model) can be found or loaded."""


class ConfigError(PolicytagError):
    """A config file or a ``--set`` override names an unknown key or has a value of the wrong type."""


class OutputError(PolicytagError):
    """An output cannot be written (it is one of the inputs, or its folder is not writable)."""


class ModelIntegrityError(ModelNotFoundError):
    """A model directory is damaged: a file does not match its checksum, outputs are not finite,
    or its metadata does not fit the taxonomy."""


class InputWarning(UserWarning):
    """Something in an input was dropped or repaired; the rest was read (message says where)."""
