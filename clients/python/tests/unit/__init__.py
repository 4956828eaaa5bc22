"""Unit tests: no sidecar process and no Go. The client against the stdlib fake sidecar of
fake_sidecar.py, started in-process, and pure functions. From clients/python:

    python3 -m unittest discover -s tests/unit -t .
"""
