"""User-facing errors.

Anything the user can fix (a bad file, a bad flag, a mismatched tokenizer) raises `UserError`; the CLI turns it into
one line on stderr and exit code 2. Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """An error caused by user input; printed as one line, exit code 2."""
