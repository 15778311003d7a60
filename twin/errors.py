"""The one exception type for mistakes a user can fix."""


class UserError(Exception):
    """A bad input, option or environment: the CLI prints the message on one line and exits with code 2.

    The message names the problem and the fix; it never carries a traceback.
    """

    exit_code = 2
