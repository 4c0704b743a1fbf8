"""socialguard: a GP practice's social-media policy, enforced on its proxy gateway."""

__version__ = "0.1.0"
