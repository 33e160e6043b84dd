"""Incidents (A.8.4, Art. 73): triage and clock rules, updates from people, messages, and the incident
flows.
"""
