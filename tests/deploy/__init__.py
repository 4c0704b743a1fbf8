"""Tests of what deploy/ ships, run against the real proxy and the real tools on loopback."""
