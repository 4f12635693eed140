"""The nightly learning job (`assistant learn`): select, redact, build examples, train a LoRA adapter, evaluate,
promote only if better. It builds on ``assistant`` and ``storage`` and nothing builds on it but the front ends;
the import contracts in ``pyproject.toml`` hold it to that before its first module lands."""
