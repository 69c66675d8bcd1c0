"""Governance: decisions, the governor and its policies, budget periods, content rules and the ledger."""
