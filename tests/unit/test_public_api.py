"""The public API is ``harness.__all__``; changing it is a decision, so a test pins it."""

import harness


def test_public_api_is_pinned() -> None:
    assert sorted(harness.__all__) == [
        "Aborted",
        "CheckResult",
        "ComponentFailed",
        "EnvironmentProblem",
        "Event",
        "Experiment",
        "HarnessError",
        "Interrupted",
        "LedgerSummary",
        "MissingComponent",
        "Outcome",
        "PortTaken",
        "RunResult",
        "SpecError",
        "Verdict",
        "load_experiment",
        "run",
    ]
    for name in harness.__all__:
        assert getattr(harness, name) is not None
