"""The `aims` command line: thin commands over schemas/, events/, flows/ and infra/."""
