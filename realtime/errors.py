"""One exception type for problems the user can fix; the CLI prints its message on one line and exits non-zero."""


class UnveilError(Exception):
    """A clear, user-facing problem: bad input file, missing camera, refused model, unwritable output."""

    exit_code = 2


class ModelContractError(UnveilError):
    """An ONNX file whose contract is missing, malformed or cannot be honoured by this runtime."""
