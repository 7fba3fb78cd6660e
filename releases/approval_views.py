"""Approvals on the dashboard (docs/pages.md, "Approvals"): the queue of runs awaiting approval, the count in
the navigation, the run page's approval panel, and approve, reject and cancel behind their confirmations.

Thin doors: the decisions are `releases.approvals.approve` / `reject` / `cancel`, whose refusals (403 for a
self-approval, naming the rule; 409 for a run no longer waiting or a second decision) are shown on the page,
never a 500. The door asks what only a door can: a reject's comment (400 naming `comment` when blank). GET is
the confirmation, saying what the POST would answer as things stand (no button where it would be refused).
"""

from django.db.models import Q, prefetch_related_objects
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from controlplane.errors import Conflict
from controlplane.governance import Forbidden
from controlplane.identity.roles import can, needed, refusal
from controlplane.identity.views import refused, sign_in_first
from controlplane.keyset import Keyset
from releases import approvals
from releases.models import Decision, RunKind, RunState, WorkflowRun

QUEUE_PAGE_SIZE = 50
QUEUE_ORDER = Keyset(WorkflowRun, ("started_at", "id"), "page:approvals")  # the longest waiting first
# The audit actions that change who waits for whom: the count and the queue are fetched again on them.
LIVE_ACTIONS = "approval.request run.approve run.reject run.cancel run.expire deploy.create release.promote"
VERBS = {"approve": "Approve", "reject": "Reject", "cancel": "Cancel"}


def waiting():
    """Runs awaiting approval, with what they roll out and the decisions so far (two queries for any number)."""
    return (
        WorkflowRun.objects.filter(state=RunState.AWAITING_APPROVAL)
        .select_related("release__service", "release__environment", "source_release")
        .prefetch_related("approvals")
    )


def awaiting_count(principal) -> int:
    """How many runs await an approval `principal` could give: not their own, not decided by them yet (one
    query; 0 for a role that may not approve)."""
    if not can(principal, "run.approve"):
        return 0
    return (
        WorkflowRun.objects.filter(state=RunState.AWAITING_APPROVAL)
        .exclude(actor=principal.actor)
        .exclude(Q(approvals__actor=principal.actor))
        .count()
    )


def standing(principal, run: WorkflowRun) -> dict:
    """Where `principal` stands with a waiting run (its approvals prefetched): what the queue says and offers."""
    approved = sum(1 for a in run.approvals.all() if a.decision == Decision.APPROVE)
    mine = next((a for a in run.approvals.all() if a.actor == principal.actor), None)
    own = run.actor == principal.actor
    if own:
        label, key = "you asked for this", "own"
    elif not can(principal, "run.approve"):
        label, key = f"needs a {needed('run.approve')}", "role"
    elif mine is not None:
        label, key = f"you {'approved' if mine.decision == Decision.APPROVE else 'rejected'}", "decided"
    else:
        label, key = "you can approve", "can"
    return {
        "run": run,
        "approved": approved,
        "remaining": max(run.approvals_required - approved, 0),
        "label": label,
        "key": key,
        "may_decide": key == "can",
        "may_cancel": run.state == RunState.AWAITING_APPROVAL and _may_cancel(principal, run),
    }


def _may_cancel(principal, run: WorkflowRun) -> bool:
    """The run's actor or an admin (`releases.approvals.cancel` decides; this only chooses the buttons)."""
    if not can(principal, "run.cancel"):
        return False
    return run.actor == principal.actor or can(principal, "admin.access")


@require_safe
def queue(request):
    """`/approvals/`: the runs awaiting approval, the longest waiting first; `?fragment=rows` is the live table."""
    live = request.GET.get("fragment") == "rows"
    if request.principal is None:
        return HttpResponse("Sign in again.", status=401) if live else sign_in_first(request)
    cursor = request.GET.get("cursor", "")
    page, _ = QUEUE_ORDER.page_from(waiting(), QUEUE_PAGE_SIZE, cursor)
    context = {
        "principal": request.principal,
        "entries": [standing(request.principal, run) for run in page.rows],
        "cursor": cursor,
        "next": page.next_cursor(),
        "previous": page.previous_cursor(),
        "live_actions": LIVE_ACTIONS,
        "can_approve": can(request.principal, "run.approve"),
        "role_refusal": refusal(request.principal, "run.approve"),
    }
    return render(request, "releases/_approvals_rows.html" if live else "releases/approvals.html", context)


@require_safe
def count(request):
    """`/approvals/count`: the navigation's "awaiting your approval" badge, fetched by live.js."""
    if request.principal is None:
        return HttpResponse("Sign in again.", status=401)
    context = {"count": awaiting_count(request.principal), "live_actions": LIVE_ACTIONS}
    return render(request, "releases/_approvals_count.html", context)


def _run_or_404(run_id: str) -> WorkflowRun:
    run = WorkflowRun.objects.select_related("release__service", "release__environment", "source_release")
    run = run.prefetch_related("approvals").filter(pk=run_id).first()
    if run is None:
        raise Http404(f"No workflow run {run_id}.")
    return run


def _as_things_stand(principal, run: WorkflowRun, action: str) -> tuple[str | None, int]:
    """What the POST would answer now, when it would be a refusal: (message, status), else (None, 200)."""
    if run.state != RunState.AWAITING_APPROVAL:
        return f"run {run.pk} is {run.state}: it is not awaiting approval.", 409
    if action == "cancel":
        return (None, 200) if _may_cancel(principal, run) else ("only the run's actor or an admin may cancel it.", 403)
    if problem := approvals.decision_refusal(principal, run):
        return problem, 403
    if any(a.actor == principal.actor for a in run.approvals.all()):
        return f"{principal.actor} has already decided on run {run.pk}; each principal counts once.", 409
    return None, 200


def _decide(action: str, run: WorkflowRun, comment: str):
    if action == "approve":
        return approvals.approve(run, comment)
    if action == "reject":
        return approvals.reject(run, comment)
    return approvals.cancel(run)


@require_http_methods(["GET", "HEAD", "POST"])
def decide(request, run_id, action):
    """`/runs/<id>/approve/`, `…/reject/`, `…/cancel/`: GET the confirmation, POST the decision, then to the run's
    page (which follows the run once it starts). A refusal, the domain's or the comment's, stays on this page."""
    if request.principal is None:
        return sign_in_first(request)
    permission = f"run.{action}"
    if request.method == "POST" and not can(request.principal, permission):
        return refused(request, permission)
    run = _run_or_404(run_id)
    comment = request.POST.get("comment", "") if request.method == "POST" else ""
    error, status, comment_error = None, 200, None
    if request.method == "POST":
        if action == "reject" and not comment.strip():
            comment_error, status = "comment: is required: say why the run is rejected.", 400
        elif len(comment) > approvals.COMMENT_LIMIT:
            comment_error, status = f"comment: must be at most {approvals.COMMENT_LIMIT} characters.", 400
        else:
            try:
                _decide(action, run, comment.strip())
            except Forbidden as problem:
                error, status = str(problem), 403
            except Conflict as problem:
                error, status = str(problem), 409
            else:
                return redirect("releases:run", run_id=run.pk)
            run = _run_or_404(run_id)
    elif can(request.principal, permission):
        error, status = _as_things_stand(request.principal, run, action)
    context = {
        "principal": request.principal,
        "action": action,
        "verb": VERBS[action],
        "entry": standing(request.principal, run),
        "run": run,
        "kind": _kind(run),
        "error": error,
        "comment": comment,
        "comment_error": comment_error,
        "comment_limit": approvals.COMMENT_LIMIT,
        "allowed": can(request.principal, permission),
        "refusal": refusal(request.principal, permission),
        "offered": error is None and can(request.principal, permission),
    }
    return render(request, "releases/decide.html", context, status=status)


def _kind(run: WorkflowRun) -> str:
    return {RunKind.DEPLOY: "deploy", RunKind.PROMOTE: "promotion", RunKind.ROLLBACK: "rollback"}[run.kind]


def panel_context(principal, run: WorkflowRun) -> dict:
    """The run page's approval panel (the run's approvals read here, in one query, unless prefetched)."""
    prefetch_related_objects([run], "approvals")
    return {"entry": standing(principal, run), "decisions": list(run.approvals.all())}
