"""How fast the gateway answers Slack: signed clicks against the floor of a bare health check.

Slack wants an interaction answered within 3 s. The gateway verifies the signature, validates the
click and records it in the register (accepted, duplicate or refused) before it answers; the Kafka
send follows the answer. This runs the real app under uvicorn on loopback, on a throwaway SQLite
register with the shipped policy, and times from the first byte sent to the answer read:

- floor: `GET /healthz` (one register read), the same server, same client, same run;
- clicks: signed `block_actions` posts, cycling through accepted, duplicate and refused attempts.

Prints medians, p95, and the ratio of the click median to the floor median.

    python -m bench.gateway [--clicks 300] [--floor 300]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.common import Progress, load_average

SECRET = "bench-signing-secret"
POLICY = Path(__file__).resolve().parent.parent / "policy" / "aims-policy.yaml"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from connectors.register.store import Register
    from connectors.slack import SlackChat
    from gateway.app import create_app
    from gateway.desk import DecisionDesk
    from schemas.payloads import RiskLevel
    from schemas.policy_file import load_policy
    from schemas.records import Approval
    from schemas.settings import AimsSettings
    from tests.fakes.slack import SlackFake
    from tests.fakes.slack_signing import block_actions_payload, signed_interaction_request

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clicks", type=int, default=300)
    parser.add_argument("--floor", type=int, default=300)
    args = parser.parse_args(argv)
    progress = Progress("gateway")
    # Slack ids become the policy's people through users.lookupByEmail (below): the example policy's
    # pinned ids are the fictional workspace's, not the fake's.
    policy = load_policy(POLICY).model_copy(update={"people": {}})
    members = sorted({m for g in policy.approver_groups.values() for m in g.members})

    with tempfile.TemporaryDirectory() as state:
        register = Register.for_state(Path(state))
        register.migrate()
        now = datetime.now(UTC)
        with register.unit_of_work("bench") as uow:
            for i in range(args.clicks // 10 + 1):
                uow.approvals.add(
                    Approval(
                        id=f"approval-{i}",
                        subject="risk-assessment:bench",
                        system="credit-scoring",
                        requested_decision="risk-treatment",
                        risk_level=RiskLevel.critical,
                        approver_group="compliance,executive",
                        quorum=20,  # never decided: every click is a real check and a real write
                        context={"distinct_groups": False, "submitted_by": "dev@northwind.example"},
                        requested_by="bench",
                        requested_at=now,
                        due_at=now + timedelta(hours=24),
                    )
                )
        # Slack ids become the policy's people through users.lookupByEmail: the loopback fake answers.
        slack = SlackFake().start()
        ids = {m: slack.add_user(m) for m in members}
        ids["outsider@example.org"] = slack.add_user("outsider@example.org")
        sent: list[str] = []
        chat = SlackChat(slack.bot_token, slack.base_url)
        desk = DecisionDesk(register, lambda: policy, "aims.events", sent.extend, chat, None)
        settings = AimsSettings(slack_signing_secret=SECRET)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, desk, time.time), host="127.0.0.1", port=0, log_level="warning"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        progress(f"gateway on {url}; load average {load_average()}")
        try:
            with httpx.Client(timeout=10) as client:
                for _ in range(20):  # warm-up
                    client.get(f"{url}/healthz")
                # The first click looks every policy member up in Slack once; later ones use the cache.
                warm, headers = signed_interaction_request(
                    block_actions_payload(
                        user_id=ids["outsider@example.org"],
                        user_name="outsider",
                        channel_id="C1",
                        message_ts="1.000001",
                        action_id="approval.approve",
                        value="approval-0",
                        response_url=slack.new_response_url(),
                    ),
                    SECRET,
                )
                client.post(f"{url}/slack/interactions", content=warm, headers=headers).raise_for_status()
                floor = []
                for _ in range(args.floor):
                    start = time.perf_counter()
                    client.get(f"{url}/healthz").raise_for_status()
                    floor.append(time.perf_counter() - start)
                progress(f"floor: {args.floor} health checks")
                clicks, statuses = [], {"accepted": 0, "duplicate": 0, "refused": 0}
                people = [*members, "outsider@example.org"]
                for i in range(args.clicks):
                    who = people[i % len(people)]
                    payload = block_actions_payload(
                        user_id=ids[who],
                        user_name=who.split("@")[0],
                        channel_id="C1",
                        message_ts="1.000001",
                        action_id="approval.approve",
                        value=f"approval-{i // len(people) % (args.clicks // 10 + 1)}",
                        response_url=slack.new_response_url(),
                    )
                    body, headers = signed_interaction_request(payload, SECRET)
                    start = time.perf_counter()
                    answer = client.post(f"{url}/slack/interactions", content=body, headers=headers)
                    clicks.append(time.perf_counter() - start)
                    answer.raise_for_status()
                    statuses[answer.json()["status"]] += 1
                progress(f"clicks: {statuses}")
        finally:
            server.should_exit = True
            thread.join(10)
            slack.stop()
            register.close()
    floor_ms = statistics.median(floor) * 1000
    click_ms = statistics.median(clicks) * 1000
    print(f"load average {load_average()}")
    floor_p95, click_p95 = percentile(floor, 0.95) * 1000, percentile(clicks, 0.95) * 1000
    print(f"floor  GET /healthz             median {floor_ms:7.2f} ms   p95 {floor_p95:7.2f} ms")
    print(
        f"clicks POST /slack/interactions median {click_ms:7.2f} ms   p95 {click_p95:7.2f} ms"
        f"   max {max(clicks) * 1000:7.2f} ms"
    )
    print(
        f"ratio  click / floor = {click_ms / floor_ms:.1f}×; Slack's limit is 3000 ms: "
        f"{3000 / (percentile(clicks, 0.95) * 1000):.0f}× headroom at p95"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
