"""The contract of the whole system: pydantic v2 models for events, records and settings.

Import the submodules directly (`schemas.events`, `schemas.settings`); this package imports nothing
heavy so that the CLI stays fast.
"""
