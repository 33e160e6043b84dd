"""Approvals (A.9.2, 8.4): who must decide, the decision path, the messages, and the flows that ask and
chase.
"""
