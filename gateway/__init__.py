"""Everything HTTP that comes in: the gateway app (Slack actions, Jira webhooks), Slack Socket Mode,
the desks.
"""
