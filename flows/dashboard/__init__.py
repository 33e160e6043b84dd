"""The dashboard (issue 22): gathered from the register, rendered as one HTML page."""
