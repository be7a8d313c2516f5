"""The rule catalogue as code: importing this package registers every rule once."""

from gateway.domain.rules import case_rules, claim_rules, debtor_rules, file_rules
from gateway.domain.rules.case_rules import FileState
from gateway.domain.rules.file_rules import FileFacts
from gateway.domain.rules.registry import (
    RULESET_VERSION,
    AttachmentFacts,
    History,
    NoHistory,
    Rule,
    RuleContext,
    Scope,
    all_rules,
    get_rule,
    rules_in,
)

__all__ = [
    "RULESET_VERSION",
    "AttachmentFacts",
    "FileFacts",
    "FileState",
    "History",
    "NoHistory",
    "Rule",
    "RuleContext",
    "Scope",
    "all_rules",
    "case_rules",
    "claim_rules",
    "debtor_rules",
    "file_rules",
    "get_rule",
    "rules_in",
]
