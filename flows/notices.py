"""The key of a notice sent about an incident, so each is sent once (clock reminders, joined reviews).

Incidents send clock notices and reviews send "joined" notices about the same incidents; the key
lives here, below both activities.
"""


def notice_id(incident_id: str, kind: str, step: str = "") -> str:
    return f"{incident_id}:{kind}:{step}"
