"""AI risk (6.1, 8.2, 8.3): scoring rules and the reassessment flows."""
