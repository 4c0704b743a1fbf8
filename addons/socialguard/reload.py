"""The policy in force, swapped whole and atomically; a rejected file never replaces it."""

from __future__ import annotations

from socialguard.policy import Policy


class PolicyHolder:
    """Holds the last good policy. Calling it returns the policy in force right now."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    def __call__(self) -> Policy:
        return self._policy

    def replace(self, policy: Policy) -> Policy:
        """Put a fully validated policy in force; returns the one it replaced."""
        old, self._policy = self._policy, policy
        return old
