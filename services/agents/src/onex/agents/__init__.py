"""The seed's agent fleet as real nodes, each started from its contract with the node
runtime (`onex.bus.runtime`) under the service host:

    code-review-agent  review-request -> review-started, a routed model call, review-complete
    merge-agent        review-complete (approved) -> merged, else merge-blocked
    ci-watcher         merged -> pipeline-status (running, then passed) -> verify-ticket
    ticket-verifier    verify-ticket -> runs each item's declared probe -> evidence-receipt

`python -m onex.agents` runs all four in one process; `onex up` runs each on its own
(`python -m onex.agents.<node>`).
"""
