"""Errors a user can cause: the CLI prints their message on one line and exits non-zero."""


class AceJaxError(Exception):
    """A problem with the user's input (missing file, empty corpus, bad option), not a bug."""


class SettingError(AceJaxError, ValueError):
    """A bad value of one setting. The message is a template with {name} and {value}: the Python API fills
    {name} with the config field (`min_count`), the CLI with the flag the user typed (`--min-count`)."""

    def __init__(self, field: str, value, template: str):
        self.field, self.value, self.template = field, value, template
        super().__init__(self.named(field))

    def named(self, name: str) -> str:
        return self.template.format(name=name, value=self.value)


def one_of(choices) -> str:
    """A SettingError template for a value outside `choices`."""
    return "{name} must be one of " + ", ".join(choices) + ", not {value!r}"


def check(checks) -> None:
    """Raises the first failed check: each is (ok, field, value, template) as in SettingError."""
    for ok, field, value, template in checks:
        if not ok:
            raise SettingError(field, value, template)


class Interrupted(AceJaxError):
    """Ctrl-C or SIGTERM reached a training loop, which saved a checkpoint first; exit 128 + the signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class Diverged(AceJaxError):
    """A training metric (the loss, a generator's entropy) became inf or NaN at `step`."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step
