"""Type names as pympler prints them: ``dict`` for builtins, ``module.Qualname`` otherwise.

Example::

    type_name(dict)              # 'dict'
    type_name(collections.deque) # 'collections.deque'
"""

from __future__ import annotations


def type_name(kind: type) -> str:
    """The name pympler gives a type: ``dict`` for builtins, ``module.Qualname`` otherwise."""
    module = getattr(kind, "__module__", None)
    qualname = getattr(kind, "__qualname__", None)
    if not isinstance(qualname, str):
        qualname = kind.__name__
    if not isinstance(module, str) or module == "builtins":
        return qualname
    return f"{module}.{qualname}"
