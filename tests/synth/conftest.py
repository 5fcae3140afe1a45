"""The synth tests use the session-wide ``tiny_cohort``, ``raw`` and ``manifest`` fixtures of tests/conftest.py."""
