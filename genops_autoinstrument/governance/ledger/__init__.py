"""Budget and rate ledgers, chosen by GENOPS_LEDGER_URL."""
