"""Models (A.4, A.6): the AI-system inventory flow."""
