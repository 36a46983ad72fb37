#!/usr/bin/env python3
"""Counts per test suite of a JUnit XML file, as junitparser and junit2html read it.

junit_counts.py FILE.xml -> {"junitparser": [...], "junit2html": [...]} on stdout, each a
list of {"name", "tests", "failures", "errors", "skipped"} in document order (junit2html
counts errors as failures). A library that
is not installed is left out; one that cannot read the file exits non-zero.
"""

import json
import sys


def junitparser_counts(path):
    from junitparser import JUnitXml, TestSuite, Failure, Error, Skipped

    xml = JUnitXml.fromfile(path)
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    out = []
    for suite in suites:
        counts = {"name": suite.name, "tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for case in suite:
            counts["tests"] += 1
            for result in case.result:
                if isinstance(result, Failure):
                    counts["failures"] += 1
                elif isinstance(result, Error):
                    counts["errors"] += 1
                elif isinstance(result, Skipped):
                    counts["skipped"] += 1
        out.append(counts)
    return out


def junit2html_counts(path):
    from junit2htmlreport import parser
    from junit2htmlreport.case_result import CaseResult

    report = parser.Junit(filename=path)
    out = []
    for suite in report.suites:
        counts = {"name": suite.name, "tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for case in suite.all():
            counts["tests"] += 1
            # junit2html shows errors as failures: it has one "failed" outcome for both.
            outcome = case.outcome()
            if outcome == CaseResult.FAILED:
                counts["failures"] += 1
            elif outcome == CaseResult.SKIPPED:
                counts["skipped"] += 1
        out.append(counts)
    # And it renders the file as a page without failing.
    report.html()
    return out


def main():
    path = sys.argv[1]
    result = {}
    for name, fn in [("junitparser", junitparser_counts), ("junit2html", junit2html_counts)]:
        try:
            result[name] = fn(path)
        except ImportError:
            continue
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
