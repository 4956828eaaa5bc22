"""The Python client's tests (run from clients/python):

    python3 -m unittest discover -s tests/unit -t .          # no sidecar process: a fake in-process
    WARDEN_SIDECAR_BIN=... python3 -m unittest discover -s tests/integration -t .
                                                             # a real sidecar in local mode, pip install

tests/integration/broker_suite.py (broker mode) is run by the Go e2e suite, as tests.integration.broker_suite.
"""
