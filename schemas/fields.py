"""The field types every payload shares: one-line names, free text, ids that name files.

Kept apart from the payloads so the location shapes (schemas.locations) and the payloads can both
build on them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.controls import first_control
from schemas.controls import shown as shown_character
from schemas.file_names import id_file_name


def _no_controls(allowed: str) -> Callable[[str], str]:
    """A validator refusing control characters (ESC, bidi overrides, …) but those in `allowed`.

    Names and texts reach terminals, logs, Slack and Jira; a control character in one could recolour
    or rewrite a terminal line, forge a log line or reorder what a reader sees. Refused here with a
    clear error, so nothing is recorded; the sinks also write out any that reach them by other paths.
    """

    def check(value: str) -> str:
        found = first_control(value, allowed)
        if found is not None:
            at, ch = found
            raise ValueError(
                f"must not contain control characters, got {shown_character(ch)} at character {at + 1}"
                " (terminal escapes, bidi overrides and line separators are refused)"
            )
        return value

    return check


# One line, no leading or trailing whitespace (`.` stops at a newline); error messages say so in words.
NAME_PATTERN: Final = r"^\S(.*\S)?$"
Name = Annotated[
    str, Field(min_length=1, max_length=256, pattern=NAME_PATTERN), AfterValidator(_no_controls(""))
]
# Free text keeps its line breaks and tabs; nothing else that steers a display.
Text = Annotated[str, Field(min_length=1, max_length=10_000), AfterValidator(_no_controls("\n\r\t"))]


def _names_a_file(ident: str) -> str:
    id_file_name(ident)  # raises for an id that can name no file (only dots)
    return ident


# An id the flows name files or folders after (schemas/file_names.py): refused here, at the event,
# rather than when a run gets to writing them.
FileId = Annotated[Name, AfterValidator(_names_a_file)]
# A dataset's id names its suite file as it is (`<suites>/<id>.yaml`, schemas/suites.suite_file),
# which people edit and review: letters, digits, '.', '_' and '-', starting with a letter or digit.
DATASET_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
DatasetId = Annotated[FileId, Field(pattern=DATASET_ID_PATTERN)]
# A path inside a data source; whether it stays inside is decided against the real root, not here.
RelativePath = Annotated[
    str, Field(min_length=1, max_length=1024, pattern=NAME_PATTERN), AfterValidator(_no_controls(""))
]


class Payload(BaseModel):
    # Unknown fields are refused: a typo in a producer should fail loudly, not vanish.
    model_config = ConfigDict(extra="forbid", frozen=True)
