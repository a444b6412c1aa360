"""A mypy plugin: the event classes that eventsourcing's ``@event("Name")`` creates.

``@event("Updated")`` on an aggregate's method (or ``_updated = event("Updated")(set_profile)``
in its body) makes the library define ``Thing.Updated``
(a subclass of the aggregate's ``Event``) when the class is created; mypy cannot see it, so
the projections' ``Thing.Updated`` was an attr-defined error. This plugin declares, for every
``Aggregate`` subclass (direct or not), each such name that the class does not define itself as a class
variable of type ``type[<the class's Event>]``. Explicit event classes are left alone.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.nodes import (
    MDEF,
    AssignmentStmt,
    CallExpr,
    Decorator,
    Expression,
    RefExpr,
    StrExpr,
    SymbolTableNode,
    TypeInfo,
    Var,
)
from mypy.plugin import ClassDefContext, Plugin
from mypy.types import Instance, TypeType

AGGREGATE = "eventsourcing.domain.Aggregate"
EVENT = "eventsourcing.domain.event"


def _named_event(expr: Expression) -> str | None:
    """``Name`` of an ``event("Name")`` call, else None."""
    if (isinstance(expr, CallExpr) and isinstance(expr.callee, RefExpr)
            and expr.callee.fullname == EVENT and len(expr.args) == 1
            and isinstance(expr.args[0], StrExpr)):
        return expr.args[0].value
    return None


def _event_names(ctx: ClassDefContext) -> list[str]:
    """The names of ``@event("Name")`` decorators, and of ``_x = event("Name")(a_function)``
    (an event whose state change is shared: ``domain.traits``)."""
    names = []
    for stmt in ctx.cls.defs.body:
        found: list[str | None] = []
        if isinstance(stmt, Decorator):
            found = [_named_event(dec) for dec in stmt.decorators]
        elif isinstance(stmt, AssignmentStmt) and isinstance(stmt.rvalue, CallExpr):
            found = [_named_event(stmt.rvalue.callee)]
        names += [name for name in found if name is not None]
    return names


def _declare_events(ctx: ClassDefContext) -> None:
    info = ctx.cls.info
    base = info.get("Event")
    if base is None or not isinstance(base.node, TypeInfo):
        return  # the library changed its shape: mypy reports the names as before
    event_type = TypeType(Instance(base.node, []))
    for name in _event_names(ctx):
        if name in info.names:
            continue  # declared in the class (an explicit event class) or already added
        var = Var(name, event_type)
        var.info = info
        var._fullname = f"{info.fullname}.{name}"
        var.is_classvar = True
        info.names[name] = SymbolTableNode(MDEF, var, plugin_generated=True)


class EventsourcingEvents(Plugin):
    def get_base_class_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        # mypy asks about the direct bases only: Thing(Entity) asks about domain.base.Entity.
        if fullname == AGGREGATE:
            return _declare_events
        sym = self.lookup_fully_qualified(fullname)
        if sym is not None and isinstance(sym.node, TypeInfo) and sym.node.has_base(AGGREGATE):
            return _declare_events
        return None


def plugin(version: str) -> type[Plugin]:
    return EventsourcingEvents
