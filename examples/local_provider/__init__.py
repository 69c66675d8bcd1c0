"""A stdlib-only local HTTP endpoint that stands in for LLM providers in demos and tests."""
