"""Export conversations (Markdown for reading, the assistant's own JSON for a lossless round trip) and import them.

Imports accept three shapes, told apart automatically:

* ``json``: the assistant's own export, ``{"format": "assistant-history", "version": 1, "conversations": [...]}``,
  carrying every message field (token counts, timings, finish reason, completeness, feedback);
* ``minimal``: ``{"conversations": [{"title": str, "messages": [{"role", "content", "created_at"}]}]}``;
* ``chatgpt``: ChatGPT's ``conversations.json``, a list of conversations whose messages form a tree in
  ``mapping``; the visible branch is the path from ``current_node`` back to the root.

The whole file is checked before anything is written, and then written in one transaction, so a bad file is refused
with one sentence that says where it is wrong and leaves the database as it was.
"""

from storage.transfer.checks import Invalid
from storage.transfer.export import (
    FORMAT_NAME,
    FORMAT_VERSION,
    export_data,
    export_json,
    export_markdown,
    human_time,
    incomplete_note,
    message_record,
    rating_label,
)
from storage.transfer.reader import ImportResult, ParsedImport, import_bytes, import_parsed, parse, read_import

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ImportResult",
    "Invalid",
    "ParsedImport",
    "export_data",
    "export_json",
    "export_markdown",
    "human_time",
    "import_bytes",
    "import_parsed",
    "incomplete_note",
    "message_record",
    "parse",
    "rating_label",
    "read_import",
]
