"""Exception hierarchy: library code raises these, the CLI prints them as one line.

:data:`EXIT_ERROR` is the exit status of such a line, :data:`EXIT_INTERRUPTED` that of Ctrl-C.
"""

#: Exit status of an expected failure (one ``error: ...`` line).
EXIT_ERROR = 2
#: Exit status after Ctrl-C (finished work is kept).
EXIT_INTERRUPTED = 130


class BenchmarkError(Exception):
    """Root of every error the harness raises on purpose."""


class ConfigError(BenchmarkError):
    """An option or combination of options cannot work (bad value, impossible split)."""


class DataError(BenchmarkError):
    """The dataset or one of its files is missing, malformed or unreadable."""


class UnknownNameError(ConfigError, KeyError):
    """A registry lookup failed; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return str(self.args[0]) if self.args else ""


class CacheError(BenchmarkError):
    """The feature cache cannot be read or written (permissions, disk full)."""


class OutputError(BenchmarkError):
    """Results cannot be written (run folder unwritable, disk full); nothing half-written is left."""
