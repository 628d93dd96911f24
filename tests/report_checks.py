"""A report must not contradict itself: checks any test can run on any report.

* statuses: each tensor's from the three, the report's the worst of them (FAILED with a
  problem), an UNVERIFIED tensor has a reason, a FAILED one names its failure;
* counts: ``mismatched`` is the number of failed elements; a tensor that is ok has none
  failed or unverified; the kink tally adds up;
* figures: every "±A, more than the B" quotes A > B; every "analytic X vs numeric Y" whose
  values differ shows different digits;
* notes: the elements "verified nearby" notes count are within the kink tally's re-checks
  at jittered points, and the element each names first did not fail.
"""
from __future__ import annotations

import re

import numpy as np

import gradcheck as gc

STATUSES = {gc.Status.OK, gc.Status.FAILED, gc.Status.UNVERIFIED}
BEYOND = re.compile(r"±([0-9.]+e[+-]\d+), more than the ([0-9.]+e[+-]\d+)")
VERSUS = re.compile(r"analytic (\S+) vs numeric (\S+?)[;,)]?(?:\s|$)")
NEARBY = re.compile(r"^(\w+): (\d+) element\(s\) \(first \w+(?:\[([\d, ]*)\])?\)")


def assert_report_consistent(report: gc.Report) -> str:
    """Assert the report agrees with itself; returns its text."""
    text = str(report)
    statuses = {t.status for t in report.tensors}
    assert statuses <= STATUSES, statuses
    worst = (gc.Status.FAILED if report.problems or gc.Status.FAILED in statuses else
             gc.Status.UNVERIFIED if gc.Status.UNVERIFIED in statuses else gc.Status.OK)
    assert report.status == worst, text
    for t in report.tensors:
        assert t.mismatched == int(np.sum(t.failed)) or t.mode == "fast", (t.name, text)
        if t.status == gc.Status.OK:
            assert t.mismatched == 0 and t.unverified == 0, (t.name, text)
        if t.status == gc.Status.UNVERIFIED:
            assert t.unverified_reason and t.mismatched == 0, (t.name, text)
        if t.status == gc.Status.FAILED:
            assert t.failure, (t.name, text)
        k = t.kinks
        assert k.by_hull + k.by_jitter + k.unverified + k.skipped <= max(k.met, t.size), \
            (t.name, k, text)
    for quoted, bound in BEYOND.findall(text):
        assert float(quoted) > float(bound), f"±{quoted} quoted as more than {bound}:\n{text}"
    for analytic, numeric in VERSUS.findall(text):
        if analytic == numeric:
            raise AssertionError(f"'analytic {analytic} vs numeric {numeric}' shows no "
                                 f"difference:\n{text}")
    by_name = {t.name: t for t in report.tensors}
    cleared = dict.fromkeys(by_name, 0)
    for note in report.notes:
        found = NEARBY.match(note.text)
        if note.kind != "verified_nearby" or not found or found.group(1) not in by_name:
            continue
        t = by_name[found.group(1)]
        cleared[t.name] += int(found.group(2))
        index = tuple(int(i) for i in (found.group(3) or "").split(",") if i.strip())
        assert t.failed.size == 0 or not t.failed[index], (note.text, text)
    for name, count in cleared.items():
        assert count <= by_name[name].kinks.by_jitter, (name, count, text)
    return text
