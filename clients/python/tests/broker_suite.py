"""The broker-mode suite, under the name the Go e2e suite runs it by (test/e2e/python_test.go:
`python3 -m unittest -v tests.broker_suite` in clients/python). The tests are in
tests/integration/broker_suite.py; this module loads all of them."""

from __future__ import annotations

import unittest
from typing import Optional

from tests.integration import broker_suite as _suite


def load_tests(loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: Optional[str]) -> unittest.TestSuite:
    return loader.loadTestsFromModule(_suite)
