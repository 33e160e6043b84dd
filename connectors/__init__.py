"""One module per outside system, each behind a small Protocol. Nothing is created at import."""
