"""What a trial's people see of it as a whole: the worklist, and the dashboard (progress, states,
agreement between the two readers, waterfall and spider plots)."""

from __future__ import annotations

from typing import Any

from trials import agreement as agreement_mod
from trials import plots
from trials.models import Read
from trials.services.access import TrialAccess, require_results, visible_reads
from trials.services.signing import final_read, overall_responses, subject_reads, subject_state


def worklist(access: TrialAccess) -> list[dict[str, Any]]:
    """Readers: their reads in their random order. Organizers/adjudicators: every visible read."""
    reads = visible_reads(access)
    if access.sees_results:
        reads = reads.order_by("subject__label", "reader__username")
    return [{"id": r.pk, "subject": r.subject.label, "reader": r.reader.get_username(), "status": r.status,
             **({"subject_id": r.subject_id, "state": subject_state(r.subject)} if access.sees_results else {})}
            for r in reads]


def dashboard(access: TrialAccess) -> dict[str, Any]:
    require_results(access)
    trial = access.trial
    reads = list(Read.objects.filter(trial=trial).select_related("reader", "subject"))
    progress: dict[str, dict[str, int]] = {}
    for read in reads:
        row = progress.setdefault(read.reader.get_username(), {"assigned": 0, "signed": 0})
        row["assigned"] += 1
        row["signed"] += read.is_signed
    subjects = list(trial.subjects.prefetch_related("timepoints").order_by("label"))
    pairs: list[tuple[str, str]] = []
    states: dict[str, int] = {}
    bars, lines, rows = [], [], []
    for subject in subjects:
        state = subject_state(subject)
        states[state] = states.get(state, 0) + 1
        both = subject_reads(subject)
        if trial.double_read and len(both) == 2 and all(r.result for r in both):
            first, second = (overall_responses(r) for r in both)
            pairs += [(first[label] or "", second.get(label) or "") for label in first]
        final = final_read(subject)
        rows.append({"id": subject.pk, "label": subject.label, "state": state,
                     "final_read": final.pk if final else None,
                     "best_overall_response": (final.result or {}).get("best_overall_response") if final else None})
        if final is None or not final.result:
            continue
        results = final.result["timepoints"]
        changes = [tp["change_from_baseline_pct"] for tp in results[1:] if tp["change_from_baseline_pct"] is not None]
        response = final.result["best_overall_response"]
        if changes:
            bars.append(plots.WaterfallBar(subject.label, min(changes), response))
        days = {tp.label: (tp.date - subject.timepoints.all()[0].date).days for tp in subject.timepoints.all()}
        points = [(days[tp["label"]], tp["change_from_baseline_pct"]) for tp in results
                  if tp["change_from_baseline_pct"] is not None]
        if points:
            lines.append(plots.SpiderLine(subject.label, points, response))
    agreed = agreement_mod.agreement(pairs)
    return {
        "trial": {"name": trial.name, "double_read": trial.double_read,
                  "confirmation_required": trial.confirmation_required,
                  "targets_by_length": trial.targets_by_length},
        "progress": progress,
        "subjects": rows,
        "states": states,
        "agreement": {"pairs": agreed.pairs, "agreeing": agreed.agreeing, "percent": agreed.percent,
                      "kappa": agreed.kappa},
        "waterfall_svg": plots.waterfall_svg(bars),
        "spider_svg": plots.spider_svg(lines),
    }
