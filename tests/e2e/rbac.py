"""What the e2e test asks ``kubectl auth can-i`` about the CLI's ServiceAccount, and how.

Shared with tests/chart/test_e2e_questions.py, which puts the same questions with the real kubectl
to a stand-in API server that answers from the rendered Role (no cluster needed).
"""

from __future__ import annotations

# (verb, resource, subresource) -> kubectl's answer for a subject bound only to the chart's Role.
CAN_I: dict[tuple[str, str, str], str] = {
    ("list", "pods", ""): "yes",
    ("get", "pods", "proxy"): "yes",
    ("get", "pods", ""): "no",
    ("create", "pods", "proxy"): "no",
    ("get", "secrets", ""): "no",
    ("get", "deployments.apps", ""): "yes",
    ("list", "horizontalpodautoscalers.autoscaling", ""): "yes",
    ("patch", "deployments.apps", ""): "no",
}


def can_i_args(verb: str, resource: str, subresource: str, who: str) -> list[str]:
    """``kubectl auth can-i`` arguments. kubectl reads ``TYPE/NAME``: "pods/proxy" would ask about a
    pod named "proxy", so a subresource goes in --subresource."""
    extra = ["--subresource", subresource] if subresource else []
    return ["auth", "can-i", verb, resource, *extra, "--as", who]
