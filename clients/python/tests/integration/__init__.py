"""Integration tests: the client against a real warden-sidecar in local mode (harness.py starts
it from WARDEN_SIDECAR_BIN, or builds one with Go), and the packaging (the build backend, and
`pip install --no-index` into a fresh venv). From clients/python:

    WARDEN_SIDECAR_BIN=$PWD/../../bin/python-test/warden-sidecar python3 -m unittest discover -s tests/integration -t .

broker_suite.py is not collected here: the Go e2e suite runs it against sidecars in broker mode.
"""
