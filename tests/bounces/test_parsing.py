"""`read_report`: hard and soft bounces, complaints, and everything else."""

from __future__ import annotations

from postillon.bounces.parsing import ReportKind, read_report
from tests.bounces.reports import arf, dsn, plain_mail


def test_a_failed_dsn_is_a_hard_bounce() -> None:
    report = read_report(dsn("ada@example.com"))
    assert report.kind is ReportKind.hard
    assert report.addresses == {"ada@example.com"}
    assert report.statuses == ("5.1.1",)
    assert report.diagnostic == "smtp; 550 5.1.1 User unknown"
    assert report.original_message_id == "<orig@postillon.test>"


def test_delayed_and_temporary_failures_are_soft() -> None:
    delayed = read_report(dsn("ada@example.com", action="delayed", status="4.4.1"))
    assert delayed.kind is ReportKind.soft
    full = read_report(dsn("ada@example.com", status="4.2.2", diagnostic="smtp; 452 full"))
    assert (full.kind, full.statuses) == (ReportKind.soft, ("4.2.2",))


def test_an_arf_report_is_a_complaint() -> None:
    report = read_report(arf("ada@example.com"))
    assert report.kind is ReportKind.complaint
    assert report.addresses == {"ada@example.com"}
    assert (report.feedback_type, report.reporter) == ("abuse", "ISP-FBL/1.0")
    assert report.original_message_id == "<orig@postillon.test>"


def test_anything_else_is_other() -> None:
    assert read_report(plain_mail("bounce@localhost")).kind is ReportKind.other
    assert read_report(b"\x00\xff garbage").kind is ReportKind.other
