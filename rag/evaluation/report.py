"""The plain-text form of an evaluation report, as ``rag eval`` prints it."""

from __future__ import annotations

from typing import Any


# Over 40 lines on purpose: one printed line per figure, in the order the report shows them.
def format_report(report: dict[str, Any]) -> str:
    """The report as the table ``rag eval`` prints."""
    s = report["settings"]
    lines = [
        f"{report['questions']} questions, {report['documents']} documents, {report['chunks']} chunks "
        f"(chunk_tokens {s['chunk_tokens']}, overlap {s['chunk_overlap']}, ~{report['mean_chunk_words']} "
        f"words per chunk), fusion {s['fusion']} (dense weight {s['dense_weight']}), "
        f"abstain threshold {s['abstain_threshold']} "
        f"(other-language questions {s['cross_abstain_threshold']})",
    ]
    for section in ("retrieval", "answers", "latency_ms"):
        if section in report:
            lines.append(f"\n{section}")
            lines += [f"  {name:<30} {_number(value)}" for name, value in report[section].items()]
    for key in ("abstention", "without_gold"):
        if key in report:
            lines += _abstention_lines(report[key], key == "without_gold")
    follow = report.get("followups")
    if follow:
        lines.append(f"\nfollow-up questions ({follow['questions']})")
        lines += [f"  {k:<30} {_number(follow[k])}" for k in ("correct_with_history", "correct_alone")]
    for key, title in (
        ("after_previous_question", "the one before it"),
        ("after_unrelated_question", "one about another article"),
    ):
        chat = report.get(key)
        if chat:
            lines.append(f"\nthe same questions, each asked after {title}")
            lines += [
                f"  {k:<30} {_number(v)}" for part in ("retrieval", "answers") for k, v in chat[part].items()
            ]
            if "changed_answers" in chat:
                lines.append(f"  {'changed_answers':<30} {chat['changed_answers']}")
    unrelated = report.get("after_unrelated")
    if unrelated:
        lines.append(
            f"\nthe same questions, each asked after one about another article ({unrelated['questions']})"
        )
        lines += [f"  {k:<30} {_number(v)}" for k, v in unrelated.items() if k != "questions"]
    for failure in report.get("failures", []):
        lines.append(f"\nnot answered correctly: {failure['question']} (expected {failure['expected']!r})")
    return "\n".join(lines)


def _abstention_lines(ab: dict[str, Any], without_gold: bool) -> list[str]:
    if without_gold:
        title = (
            f"abstention, gold paragraphs hidden ({ab['answerable']} answerable; {ab['unanswerable']} asked"
            f" again without their paragraph, {ab['skipped']} skipped: answered elsewhere too)"
        )
    else:
        title = f"abstention ({ab['answerable']} answerable, {ab['unanswerable']} unanswerable)"
    lines = [f"\n{title}"]
    keys = (
        "threshold",
        "cross_threshold",
        "answerable_answered",
        "answerable_correct",
        "unanswerable_abstained",
    )
    lines += [f"  {k:<30} {_number(ab[k])}" for k in keys if k in ab]
    for lang, r in ab.get("by_language", {}).items():
        lines.append(
            f"  {lang}: answered {_number(r['answerable_answered'])} of {r['answerable']} answerable,"
            f" abstained on {_number(r['unanswerable_abstained'])} of {r['unanswerable']} unanswerable"
        )
    for key, group in (("sweep", "in the articles' language"), ("sweep_cross", "in another language")):
        if key not in ab:
            continue
        lines.append(f"\n  questions {group}: rates at each threshold")
        lines.append("  threshold  answered  correct  unanswerable abstained")
        lines += [
            f"  {r['threshold']:>9.2f}  {r['answerable_answered']:>8.3f}  {r['answerable_correct']:>7.3f}"
            f"  {r['unanswerable_abstained']:>8.3f}"
            for r in ab[key]
        ]
    return lines


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
