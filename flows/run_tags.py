"""How a flow run is found again: its deployment name and the tags that tie runs to a subject.

The router puts these on the runs it starts (`events.routing`) and the flows look runs up by them
(a data check finds a later check of its dataset; the chaser finds a request still waiting), so both
sides import them from here, below either.
"""

from __future__ import annotations

from schemas.events import AimsEvent

# Every deployment is served under this name; the flow name says what it does.
DEPLOYMENT = "aims"


def dataset_tag(event: AimsEvent) -> str:
    return f"dataset:{getattr(event.data, 'dataset_id', event.key)}"


def approval_tag(event: AimsEvent) -> str:
    return f"approval:{event.key}"
