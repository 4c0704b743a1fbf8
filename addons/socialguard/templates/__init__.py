"""The package's Jinja templates (block page, report, privacy notice, export, the Practice
Manager's page and digest), loaded one way: HTML autoescaped, since pages echo host names,
user names and purposes from requests and files, and strict, so a value left out fails a test
instead of printing as nothing."""

from __future__ import annotations

import functools

import jinja2


@functools.cache
def environment(*, plain_text_too: bool = False) -> jinja2.Environment:
    """`plain_text_too`: for the digest e-mail, whose .txt template has block tags on lines of
    their own: trimmed, so the text reads as written."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("socialguard", "templates"),
        # Every page is an .html template; only the digest's .txt is left unescaped.
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=plain_text_too,
        lstrip_blocks=plain_text_too,
    )
