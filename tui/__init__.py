"""The Textual terminal UI (kept light: the app itself is imported only when it opens)."""
