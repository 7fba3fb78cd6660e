"""Approvals (docs/domain.md, "Approvals"): a deploy or promotion into an environment with
`policy:approval:<n>` waits, AwaitingApproval, for n distinct principals other than the one who asked; the n-th
approval starts it (or, should a policy keep it from starting then, the worker does once it may). A rejection,
a cancellation or `CONTROLPLANE_APPROVAL_TTL` without enough approvals ends it; its release stays Draft.

Each decision is a row (`RunApproval`, one per principal: the database refuses a second) and an audit event,
written in one transaction; the start is a compare-and-swap on the run's state, so two last approvals racing
start it once.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from controlplane import governance
from controlplane.errors import RACE, Conflict
from controlplane.governance import Forbidden, PolicyDenied
from controlplane.identity.context import TOKEN_ACTOR, Principal, current_principal, person
from controlplane.identity.roles import Role
from controlplane.lifecycle import move
from controlplane.signals import action_performed
from releases import lifecycle, workflows
from releases.models import Decision, RunApproval, RunKind, RunState, WorkflowRun

logger = logging.getLogger(__name__)

SELF_APPROVAL = "the run's own actor cannot approve or reject it (no self-approval, admins included)."
COMMENT_LIMIT = 2000
ACTIONS = {RunKind.DEPLOY: "deploy", RunKind.PROMOTE: "promote", RunKind.ROLLBACK: "rollback"}


def _announce(run: WorkflowRun, action: str, **metadata) -> None:
    action_performed.send(sender=WorkflowRun, instance=run, action=action, metadata=metadata)


def decision_refusal(principal: Principal, run: WorkflowRun) -> str | None:
    """Why `principal` may not approve or reject `run`, or None (the role table asks for a deployer first)."""
    if person(principal.actor) == person(run.actor):
        return SELF_APPROVAL
    return principal.scope_refusal(run.release.environment_id)


def _locked_waiting(run: WorkflowRun) -> WorkflowRun:
    locked = WorkflowRun.objects.select_for_update().select_related("release").get(pk=run.pk)
    if locked.state != RunState.AWAITING_APPROVAL:
        raise Conflict(f"run {run.pk} is {locked.state}: it is not awaiting approval.")
    return locked


def _decide(run: WorkflowRun, decision: str, comment: str) -> WorkflowRun:
    principal = current_principal()
    if refusal := decision_refusal(principal, run):
        raise Forbidden(refusal)
    try:
        with transaction.atomic():
            locked = _locked_waiting(run)
            who = person(principal.actor)
            if locked.approvals.filter(Q(actor=who) | Q(actor__startswith=f"{who}{TOKEN_ACTOR}")).exists():
                raise Conflict(f"{who} has already decided on run {run.pk}; each principal counts once.")
            RunApproval(run=locked, actor=principal.actor, decision=decision, comment=comment).save()
            approvals = locked.approvals.filter(decision=Decision.APPROVE).count()
            if decision == Decision.REJECT:
                move(locked, RunState.REJECTED, action=None, finished_at=timezone.now())
            _announce(
                locked,
                f"run.{decision}",
                comment=comment,
                approvals=approvals,
                approvalsRequired=locked.approvals_required,
            )
    except IntegrityError:
        raise Conflict(RACE) from None  # the same principal's second decision, racing its first
    return locked


def approve(run: WorkflowRun, comment: str = "") -> WorkflowRun:
    """One approval by the current principal; the n-th distinct one starts the run (`start`)."""
    locked = _decide(run, Decision.APPROVE, comment)
    if locked.approvals.filter(decision=Decision.APPROVE).count() >= locked.approvals_required:
        start(locked)
    locked.refresh_from_db()
    return locked


def reject(run: WorkflowRun, comment: str) -> WorkflowRun:
    """Ends the run as Rejected (a comment says why); its release stays Draft."""
    return _decide(run, Decision.REJECT, comment)


def cancel(run: WorkflowRun) -> WorkflowRun:
    """Ends a waiting run as Cancelled: by the principal who asked for it, or an admin."""
    principal = current_principal()
    if principal.actor != run.actor and (principal.role is None or principal.role < Role.ADMIN):
        raise Forbidden("only the run's actor or an admin may cancel it.")
    with transaction.atomic():
        locked = _locked_waiting(run)
        move(locked, RunState.CANCELLED, action=None, finished_at=timezone.now())
        _announce(locked, "run.cancel")
    return locked


def start(run: WorkflowRun) -> bool:
    """Start a fully approved run: Running, its release Promoting, its task queued; or, while a policy keeps it
    from starting, leave it waiting with the reason (the worker tries again: `sweep`). Whether it started."""
    release = run.release
    facts = {"environment": release.environment}
    facts.update(source=run.source_release) if run.kind == RunKind.PROMOTE else facts.update(release=release)
    try:
        with transaction.atomic():  # a refusal here is not audited as policy.deny: the run waits, and says why
            verdict = governance.check(ACTIONS[run.kind], **facts)
            moved = WorkflowRun.objects.filter(pk=run.pk, state=RunState.AWAITING_APPROVAL).update(
                state=RunState.RUNNING, waiting_reason=""
            )
            if not moved:
                return False  # another approval (or the worker) started it, or it ended meanwhile
            run.refresh_from_db()
            action = "deploy.create" if run.kind == RunKind.DEPLOY else "release.promote"
            lifecycle.begin_rollout(
                release, action=action, details={"runId": run.pk, "approved": True, "policy": verdict.metadata}
            )
            workflows.enqueue(run)
            return True
    except PolicyDenied as refusal:
        WorkflowRun.objects.filter(pk=run.pk, state=RunState.AWAITING_APPROVAL).update(waiting_reason=str(refusal))
        return False


def ttl() -> timedelta:
    return timedelta(seconds=settings.CONTROLPLANE_APPROVAL_TTL_SECONDS)


def sweep(now: datetime | None = None) -> None:
    """The worker's round over waiting runs: expire those without enough approvals after the TTL; start the
    approved ones a policy kept waiting, once it lets them."""
    now = now or timezone.now()
    waiting = WorkflowRun.objects.filter(state=RunState.AWAITING_APPROVAL).select_related("release__environment")
    for run in waiting:
        approved = run.approvals.filter(decision=Decision.APPROVE).count() >= run.approvals_required
        try:
            if approved:
                start(run)
            elif run.started_at + ttl() <= now:
                with transaction.atomic():
                    moved = WorkflowRun.objects.filter(pk=run.pk, state=RunState.AWAITING_APPROVAL).update(
                        state=RunState.EXPIRED, finished_at=now
                    )
                    if moved:
                        run.refresh_from_db()
                        _announce(run, "run.expire", approvalsRequired=run.approvals_required, ttl=str(ttl()))
        except Exception:
            logger.exception("the approvals sweep could not handle run %s; the next round retries", run.pk)
