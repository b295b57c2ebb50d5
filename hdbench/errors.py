"""Error types. Every user-facing error is one line naming the field, the value and what is allowed."""
import difflib


class InputError(ValueError):
    """Bad user input (scenario, suite, CLI argument). The CLI prints it on one line, exit code 2."""


class PluginError(RuntimeError):
    """A plugin could not be loaded or conflicts with another (see ``hdbench list``)."""


def unknown_name(kind: str, name: str, known) -> InputError:
    """`unknown dynamics 'sdg'; did you mean 'sgd'? (known: gd, sgd, ...)`"""
    known = sorted(known)
    swapped = [k for k in known if sorted(k) == sorted(str(name))]   # transposed letters first
    close = swapped or difflib.get_close_matches(str(name), known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return InputError(f"unknown {kind} '{name}'{hint} (known: {', '.join(known) or 'none'})")
