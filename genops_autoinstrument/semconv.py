"""Every attribute, event and metric name the project emits, in one place.

GenAI names follow the OpenTelemetry semantic conventions v1.41; ``genops.*`` names follow the
GenOps governance spec v0.1. Plugins and the engine import names from here and never spell them.
"""

from __future__ import annotations

GENOPS_SPEC_VERSION = "0.1"

# --- OpenTelemetry GenAI semantic conventions (v1.41) -------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K = "gen_ai.request.top_k"
GEN_AI_REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
GEN_AI_REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
GEN_AI_REQUEST_ENCODING_FORMATS = "gen_ai.request.encoding_formats"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_OUTPUT_TYPE = "gen_ai.output.type"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

# Well-known values of gen_ai.operation.name.
OPERATION_CHAT = "chat"
OPERATION_TEXT_COMPLETION = "text_completion"
OPERATION_EMBEDDINGS = "embeddings"
OPERATION_GENERATE_CONTENT = "generate_content"

# Metric instruments of the GenAI conventions.
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
TOKEN_TYPE_INPUT = "input"
TOKEN_TYPE_OUTPUT = "output"

# --- GenOps governance spec v0.1 ----------------------------------------------------------------
GENOPS_SPEC_VERSION_ATTR = "genops.spec.version"

# Attribution: the keys users set through GENOPS_* variables or W3C baggage.
GENOPS_TEAM = "genops.team"
GENOPS_PROJECT = "genops.project"
GENOPS_ENVIRONMENT = "genops.environment"
GENOPS_CUSTOMER_ID = "genops.customer_id"
GENOPS_COST_CENTER = "genops.cost_center"
GENOPS_FEATURE = "genops.feature"
ATTRIBUTION_KEYS = (
    GENOPS_TEAM,
    GENOPS_PROJECT,
    GENOPS_ENVIRONMENT,
    GENOPS_CUSTOMER_ID,
    GENOPS_COST_CENTER,
    GENOPS_FEATURE,
)

# Cost.
GENOPS_COST_TOTAL = "genops.cost.total"
GENOPS_COST_CURRENCY = "genops.cost.currency"
GENOPS_COST_PROVIDER = "genops.cost.provider"
GENOPS_COST_MODEL = "genops.cost.model"
GENOPS_COST_STATUS = "genops.cost.status"  # "priced" | "unpriced"
GENOPS_COST_UNPRICED_REASON = "genops.cost.unpriced_reason"  # "unknown_model" | "unknown_usage"
GENOPS_COST_SOURCE = "genops.cost.source"  # "genai-prices" | "pricing-file"
COST_STATUS_PRICED = "priced"
COST_STATUS_UNPRICED = "unpriced"
UNPRICED_UNKNOWN_MODEL = "unknown_model"
UNPRICED_UNKNOWN_USAGE = "unknown_usage"

# Policy.
GENOPS_POLICY_NAME = "genops.policy.name"
GENOPS_POLICY_RESULT = "genops.policy.result"
GENOPS_POLICY_REASON_CODE = "genops.policy.reason_code"
GENOPS_POLICY_MODE = "genops.policy.mode"
RESULT_ALLOWED = "ALLOWED"
RESULT_BLOCKED = "BLOCKED"
RESULT_WARNING = "WARNING"
RESULT_RATE_LIMITED = "RATE_LIMITED"
REASON_BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
REASON_BUDGET_RESERVATION_FAILED = "BUDGET_RESERVATION_FAILED"
REASON_POLICY_DENY_MODEL = "POLICY_DENY_MODEL"
REASON_POLICY_DENY_CONTENT = "POLICY_DENY_CONTENT"
REASON_RATE_LIMITED = "RATE_LIMITED"
REASON_UNPRICED_USAGE = "UNPRICED_USAGE"  # a budget cannot hold a call it cannot price (GENOPS_UNPRICED_POLICY)

# Budget.
GENOPS_BUDGET_NAME = "genops.budget.name"
GENOPS_BUDGET_ALLOCATED = "genops.budget.allocated"
GENOPS_BUDGET_CONSUMED = "genops.budget.consumed"
GENOPS_BUDGET_REMAINING = "genops.budget.remaining"
GENOPS_BUDGET_PERIOD = "genops.budget.period"

# Accounting.
GENOPS_ACCOUNTING_RESERVED = "genops.accounting.reserved"
GENOPS_ACCOUNTING_ACTUAL = "genops.accounting.actual"
GENOPS_ACCOUNTING_UNIT = "genops.accounting.unit"
GENOPS_ACCOUNTING_ESTIMATE_STATUS = "genops.accounting.estimate_status"  # "priced" | "unpriced"
GENOPS_ACCOUNTING_CHARGED = "genops.accounting.charged"  # USD added to budgets: actual, or the estimate when unpriced
GENOPS_ACCOUNTING_CHARGED_BASIS = "genops.accounting.charged_basis"  # "actual" | "estimate"
GENOPS_BUDGET_THRESHOLD = "genops.budget.threshold"

# Ledger.
GENOPS_LEDGER_STATUS = "genops.ledger.status"  # "unavailable" when the ledger failed and fail mode is open
GENOPS_LEDGER_OPERATION = "genops.ledger.operation"

# Units of work (`genops_autoinstrument.track`) and costs that are not tokens (`track_cost`).
GENOPS_UNIT_NAME = "genops.unit.name"
GENOPS_UNIT_CALLS = "genops.unit.calls"  # model calls recorded inside the unit, nested units included
GENOPS_UNIT_UNPRICED_CALLS = "genops.unit.unpriced_calls"  # of those, calls that could not be priced
GENOPS_UNIT_FAILED_CALLS = "genops.unit.failed_calls"
GENOPS_UNIT_BLOCKED_CALLS = "genops.unit.blocked_calls"
GENOPS_UNIT_MAX_COST = "genops.unit.max_cost"
GENOPS_COST_KIND = "genops.cost.kind"  # track_cost: "vector_query", "gpu_seconds", …

# Evaluations (`genops_autoinstrument.record_eval`).
GENOPS_EVAL_METRIC = "genops.eval.metric"
GENOPS_EVAL_SCORE = "genops.eval.score"
GENOPS_EVAL_THRESHOLD = "genops.eval.threshold"
GENOPS_EVAL_RESULT = "genops.eval.result"  # "pass" | "fail", only with a threshold
EVAL_PASS = "pass"
EVAL_FAIL = "fail"

# Span events.
EVENT_POLICY_EVALUATED = "genops.policy.evaluated"
EVENT_BUDGET_RESERVATION = "genops.budget.reservation"
EVENT_BUDGET_RECONCILIATION = "genops.budget.reconciliation"
EVENT_BUDGET_ALERT = "genops.budget.alert"
EVENT_EVAL = "genops.eval"
EVENT_COST = "genops.cost"

# GenOps metric instruments.
METRIC_COST = "genops.cost"
METRIC_UNPRICED_CALLS = "genops.cost.unpriced_calls"
METRIC_POLICY_DECISIONS = "genops.policy.decisions"
METRIC_LEDGER_FAILURES = "genops.ledger.failures"
METRIC_UNIT_COST = "genops.unit.cost"
METRIC_EVAL_SCORE = "genops.eval.score"

# Resource attributes the core adds.
RESOURCE_GENOPS_VERSION = "genops.autoinstrument.version"

INSTRUMENTATION_SCOPE = "genops_autoinstrument"
