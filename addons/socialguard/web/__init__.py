"""The Practice Manager's page (`socialguard admin`): exemptions, requests and blocks in a
browser. May import core, files and audit; never proxy (it never holds the CA key)."""
