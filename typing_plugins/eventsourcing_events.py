"""A mypy plugin: the event classes that eventsourcing's ``@event("Name")`` creates.

``@event("Updated")`` on an aggregate's method makes the library define ``Thing.Updated``
(a subclass of the aggregate's ``Event``) when the class is created; mypy cannot see it, so
the projections' ``Thing.Updated`` was an attr-defined error. This plugin declares, for every
``Aggregate`` subclass (direct or not), each such name that the class does not define itself as a class
variable of type ``type[<the class's Event>]``. Explicit event classes are left alone.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.nodes import MDEF, CallExpr, Decorator, RefExpr, StrExpr, SymbolTableNode, TypeInfo, Var
from mypy.plugin import ClassDefContext, Plugin
from mypy.types import Instance, TypeType

AGGREGATE = "eventsourcing.domain.Aggregate"
EVENT = "eventsourcing.domain.event"


def _event_names(ctx: ClassDefContext) -> list[str]:
    names = []
    for stmt in ctx.cls.defs.body:
        if not isinstance(stmt, Decorator):
            continue
        for dec in stmt.decorators:
            if (isinstance(dec, CallExpr) and isinstance(dec.callee, RefExpr)
                    and dec.callee.fullname == EVENT and len(dec.args) == 1
                    and isinstance(dec.args[0], StrExpr)):
                names.append(dec.args[0].value)
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
