"""How much evidence the register holds for each clause and control: the query lives with the register
(`connectors/register/coverage.py`) so that the flows' dashboard counts it the same way."""

from __future__ import annotations

from connectors.register.coverage import ROUTER, evidence_by_id, implementation_stats

__all__ = ["ROUTER", "evidence_by_id", "implementation_stats"]
