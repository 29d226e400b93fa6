"""Fixtures of the provenance tests: no user configuration leaks in; a throwaway certificate chain."""

from __future__ import annotations

import logging

import pytest

from .helpers import make_certificates

_VARS = ("COMPOSITE_C2PA_CERT", "COMPOSITE_C2PA_KEY", "COMPOSITE_C2PA_ALG", "COMPOSITE_C2PA_TSA_URL",
         "COMPOSITE_C2PA_TRUST_ANCHORS", "COMPOSITE_C2PA", "COMPOSITE_C2PA_CONFIG", "COMPOSITE_PROVENANCE")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No signing configuration from the environment or the user's home folder; the command line's
    logging set-up (bound to this test's captured stderr) is undone afterwards."""
    for var in _VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def signing(monkeypatch, certs):
    """Signing configured through the environment (the studio's certificate chain and key)."""
    monkeypatch.setenv("COMPOSITE_C2PA_CERT", str(certs["chain"]))
    monkeypatch.setenv("COMPOSITE_C2PA_KEY", str(certs["key"]))
    return certs
