"""Local HTTP fakes of third-party services, driven by their real clients in tests."""
