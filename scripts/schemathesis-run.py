"""Runs the schemathesis CLI (arguments as given), with one workaround.

Debian 12's Python 3.11.2 raises `SystemError: AST constructor recursion depth mismatch`
from `ast.parse` when called deep in a recursion (a CPython bug fixed in 3.11.5). Hypothesis
parses the source of lambdas only to describe strategies in its messages, and schemathesis
hits that bug at random while drawing arbitrary JSON (the `message` of /api/send and
/api/dispatch is any JSON), failing a run that found nothing. A lambda whose source cannot
be parsed is described as Hypothesis itself describes an unknown one.
"""

import sys

from hypothesis.internal import lambda_sources

_describe = lambda_sources._lambda_description


def _describe_or_unknown(f):
    try:
        return _describe(f)
    except SystemError:
        return "lambda: <unknown>"


lambda_sources._lambda_description = _describe_or_unknown

from schemathesis.cli import schemathesis  # noqa: E402  (after the workaround)

if __name__ == "__main__":
    sys.argv[0] = "schemathesis"
    sys.exit(schemathesis())
