"""The one exception type for failures a user can fix; verbs turn it into exit status 2."""


class UserError(Exception):
    """Bad input, a missing file or checkpoint, a workdir written by another config, ..."""
