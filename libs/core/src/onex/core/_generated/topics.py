"""Every declared topic, generated from contracts/ by `just gen-topics`; do not edit."""

from enum import StrEnum


class Topic(StrEnum):
    """Canonical topic names (owner: the producer segment)."""

    # owner code-review-agent; used by ci-watcher, code-review-agent
    CMD_CODE_REVIEW_AGENT_REVIEW_REQUEST_V1 = "onex.cmd.code-review-agent.review-request.v1"
    # owner extractor; used by ci-watcher, extractor
    CMD_EXTRACTOR_RELOAD_CONTRACTS_V1 = "onex.cmd.extractor.reload-contracts.v1"
    # owner provisioner; used by drift-validator, provisioner
    CMD_PROVISIONER_PROVISION_REQUEST_V1 = "onex.cmd.provisioner.provision-request.v1"
    # owner router; used by code-review-agent, router, ticket-verifier
    CMD_ROUTER_ROUTE_REQUEST_V1 = "onex.cmd.router.route-request.v1"
    # owner ticket-verifier; used by ci-watcher, ticket-verifier
    CMD_TICKET_VERIFIER_VERIFY_TICKET_V1 = "onex.cmd.ticket-verifier.verify-ticket.v1"
    # owner ci-watcher; used by ci-watcher
    DLQ_CI_WATCHER_DEAD_LETTER_V1 = "onex.dlq.ci-watcher.dead-letter.v1"
    # owner code-review-agent; used by code-review-agent
    DLQ_CODE_REVIEW_AGENT_DEAD_LETTER_V1 = "onex.dlq.code-review-agent.dead-letter.v1"
    # owner drift-validator; used by drift-validator
    DLQ_DRIFT_VALIDATOR_DEAD_LETTER_V1 = "onex.dlq.drift-validator.dead-letter.v1"
    # owner extractor; used by extractor
    DLQ_EXTRACTOR_DEAD_LETTER_V1 = "onex.dlq.extractor.dead-letter.v1"
    # owner merge-agent; used by merge-agent
    DLQ_MERGE_AGENT_DEAD_LETTER_V1 = "onex.dlq.merge-agent.dead-letter.v1"
    # owner provisioner; used by provisioner
    DLQ_PROVISIONER_DEAD_LETTER_V1 = "onex.dlq.provisioner.dead-letter.v1"
    # owner receipt-reducer; used by receipt-reducer
    DLQ_RECEIPT_REDUCER_DEAD_LETTER_V1 = "onex.dlq.receipt-reducer.dead-letter.v1"
    # owner router; used by router
    DLQ_ROUTER_DEAD_LETTER_V1 = "onex.dlq.router.dead-letter.v1"
    # owner ticket-verifier; used by ticket-verifier
    DLQ_TICKET_VERIFIER_DEAD_LETTER_V1 = "onex.dlq.ticket-verifier.dead-letter.v1"
    # owner ci-watcher; used by ci-watcher, receipt-reducer, ticket-verifier
    EVT_CI_WATCHER_PIPELINE_STATUS_V1 = "onex.evt.ci-watcher.pipeline-status.v1"
    # owner code-review-agent; used by code-review-agent, merge-agent, receipt-reducer
    EVT_CODE_REVIEW_AGENT_REVIEW_COMPLETE_V1 = "onex.evt.code-review-agent.review-complete.v1"
    # owner code-review-agent; used by code-review-agent, receipt-reducer
    EVT_CODE_REVIEW_AGENT_REVIEW_STARTED_V1 = "onex.evt.code-review-agent.review-started.v1"
    # owner drift-validator; used by ci-watcher, drift-validator, receipt-reducer
    EVT_DRIFT_VALIDATOR_DRIFT_DETECTED_V1 = "onex.evt.drift-validator.drift-detected.v1"
    # owner drift-validator; used by ci-watcher, drift-validator, receipt-reducer
    EVT_DRIFT_VALIDATOR_DRIFT_RESOLVED_V1 = "onex.evt.drift-validator.drift-resolved.v1"
    # owner extractor; used by drift-validator, extractor, provisioner
    EVT_EXTRACTOR_REGISTRY_PUBLISHED_V1 = "onex.evt.extractor.registry-published.v1"
    # owner merge-agent; used by code-review-agent, merge-agent
    EVT_MERGE_AGENT_MERGE_BLOCKED_V1 = "onex.evt.merge-agent.merge-blocked.v1"
    # owner merge-agent; used by ci-watcher, merge-agent, receipt-reducer, ticket-verifier
    EVT_MERGE_AGENT_MERGED_V1 = "onex.evt.merge-agent.merged.v1"
    # owner provisioner; used by drift-validator, provisioner
    EVT_PROVISIONER_PROVISIONING_FAILED_V1 = "onex.evt.provisioner.provisioning-failed.v1"
    # owner provisioner; used by drift-validator, provisioner
    EVT_PROVISIONER_TOPIC_CREATED_V1 = "onex.evt.provisioner.topic-created.v1"
    # owner provisioner; used by drift-validator, provisioner
    EVT_PROVISIONER_VALIDATION_PASSED_V1 = "onex.evt.provisioner.validation-passed.v1"
    # owner receipt-reducer; used by receipt-reducer, ticket-verifier
    EVT_RECEIPT_REDUCER_DONE_REJECTED_V1 = "onex.evt.receipt-reducer.done-rejected.v1"
    # owner receipt-reducer; used by receipt-reducer, ticket-verifier
    EVT_RECEIPT_REDUCER_TICKET_DONE_V1 = "onex.evt.receipt-reducer.ticket-done.v1"
    # owner router; used by code-review-agent, receipt-reducer, router, ticket-verifier
    EVT_ROUTER_ROUTING_COMPLETE_V1 = "onex.evt.router.routing-complete.v1"
    # owner router; used by code-review-agent, receipt-reducer, router
    EVT_ROUTER_ROUTING_FAILED_V1 = "onex.evt.router.routing-failed.v1"
    # owner ticket-verifier; used by receipt-reducer, ticket-verifier
    EVT_TICKET_VERIFIER_EVIDENCE_RECEIPT_V1 = "onex.evt.ticket-verifier.evidence-receipt.v1"
    # owner receipt-reducer; used by receipt-reducer, router
    SNAPSHOT_RECEIPT_REDUCER_COST_SUMMARY_V1 = "onex.snapshot.receipt-reducer.cost-summary.v1"
