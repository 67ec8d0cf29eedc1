"""/admin/audit: every console and CLI action (who, what, which object, when), filtered, newest first. Admins only."""

from __future__ import annotations

from flask import render_template, request
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from feedapp.db import get_session
from feedapp.models import AuditEvent

from . import ROW_ID_MAX, admins_only, area, bp

PAGE = 100


@bp.get("/audit")
@admins_only
def list_audit():
    """The audit log, filtered by who, action and object."""
    actor = request.args.get("actor", "").strip()[:50]
    action = request.args.get("action", "").strip()[:50]
    target = request.args.get("target", "").strip()[:100]
    before = request.args.get("before", type=int)
    db = get_session()
    stmt = select(AuditEvent)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if target:
        stmt = stmt.where(AuditEvent.target == target)
    if before is not None and 0 < before <= ROW_ID_MAX:
        stmt = stmt.where(AuditEvent.id < before)
    events = list(db.scalars(stmt.order_by(AuditEvent.id.desc()).limit(PAGE + 1)))
    older = events[PAGE - 1].id if len(events) > PAGE else None
    actions = db.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)).all()
    actors = db.scalars(select(AuditEvent.actor).distinct().order_by(AuditEvent.actor)).all()
    return render_template("admin/audit.html", events=events[:PAGE], older=older, actions=actions, actors=actors,
                           actor=actor, action=action, target=target)


area("list_audit", _l("Audit log"), admin_only=True)
