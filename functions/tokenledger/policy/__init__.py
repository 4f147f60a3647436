"""The request policy: which fields a chat call may carry, which models it can end on, and the
most it can cost (pure: no I/O). api/chat.py calls plan_call and maps PolicyError to JSON."""
from tokenledger.policy.errors import PolicyError
from tokenledger.policy.plan import CallPlan, plan_call

__all__ = ["CallPlan", "PolicyError", "plan_call"]
