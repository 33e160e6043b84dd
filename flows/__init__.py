"""Prefect flows, one module per PDCA activity. Deployments are defined in `infra/deployments.py`."""
