"""Which top-level keys of a role's local fact the checks read, found in their source (an AST scan).

A check reads a role's fact with ``ctx.fact(host, ROLE)`` (ROLE a string or a module-level string
constant). The scan follows that value through a module until it stops moving:

- a name assigned from it (``fact = ctx.fact(h, SERVICE)``), in that function and the functions nested in it;
- a function that returns such a value (``dep = _deployment(ctx, web)``);
- a parameter it is passed to (``_handler_route(dep, server)``, ``configured_forwards(gw.fact)``);
- an attribute it is stored under by keyword (``Gateway(fact=fact)`` then ``gw.fact``).

and records every ``value["key"]`` and ``value.get("key")``. A key that is a parameter of the function
(``ctx.fact(server, SERVICE)[pattern]``) is resolved to the string literals the module passes there
(``_serving(ctx, "echo", ...)``). Keys of nested values (``dep["servers"][0]["port"]``) are not followed."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Scope = tuple[str, ...]  # the chain of enclosing function names, outermost first


@dataclass
class _Module:
    tree: ast.Module
    constants: dict[str, str]
    params: dict[str, list[str]]  # function name -> its parameter names, in order
    names: dict[tuple[Scope, str], str] = field(default_factory=dict)  # (scope, variable) -> role
    returns: dict[str, str] = field(default_factory=dict)  # function name -> role of what it returns
    attrs: dict[str, str] = field(default_factory=dict)  # attribute name -> role

    def role_of(self, node: ast.expr, scope: Scope) -> str | None:
        """The role whose fact node evaluates to, or None when it is not (known to be) a fact."""
        if isinstance(node, ast.Call):
            return self._call_role(node)
        if isinstance(node, ast.Name):
            for depth in range(len(scope), -1, -1):
                role = self.names.get((scope[:depth], node.id))
                if role:
                    return role
            return None
        if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Store):
            return self.attrs.get(node.attr)
        return None

    def _call_role(self, call: ast.Call) -> str | None:
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr == "fact" and len(call.args) == 2:
            return self.string(call.args[1])
        if isinstance(func, ast.Name):
            return self.returns.get(func.id)
        return None

    def string(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        return None


def _walk(tree: ast.AST) -> Iterable[tuple[ast.AST, Scope]]:
    """Every node with the chain of function names it lies in."""
    stack: list[tuple[ast.AST, Scope]] = [(tree, ())]
    while stack:
        node, scope = stack.pop()
        yield node, scope
        inner = (*scope, node.name) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else scope
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))


def _load(path: Path) -> _Module:
    tree = ast.parse(path.read_text(), str(path))
    constants = {
        t.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    params = {
        node.name: [a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    return _Module(tree, constants, params)


def _learn(mod: _Module, node: ast.AST, scope: Scope) -> bool:
    """Record what node tells about where facts flow; True when something new was learnt."""
    learnt: list[tuple[dict[Any, str], Any, str | None]] = []
    if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        role = mod.role_of(node.value, scope)
        learnt += [(mod.names, (scope, t.id), role) for t in targets if isinstance(t, ast.Name)]
        learnt += [(mod.attrs, t.attr, role) for t in targets if isinstance(t, ast.Attribute)]
    elif isinstance(node, ast.Return) and node.value is not None and scope:
        learnt.append((mod.returns, scope[-1], mod.role_of(node.value, scope)))
    elif isinstance(node, ast.Call):
        callee = node.func.id if isinstance(node.func, ast.Name) else None
        for kw in node.keywords:
            role = mod.role_of(kw.value, scope)
            learnt.append((mod.attrs, kw.arg, role))
            if callee in mod.params and kw.arg:
                learnt.append((mod.names, ((*_scope_of(mod, callee), callee), kw.arg), role))
        if callee in mod.params:
            names = mod.params[callee]
            for arg, name in zip(node.args, names, strict=False):
                learnt.append((mod.names, ((*_scope_of(mod, callee), callee), name), mod.role_of(arg, scope)))
    new = False
    for table, key, role in learnt:
        if role and key and table.get(key) != role:
            table[key] = role
            new = True
    return new


def _scope_of(mod: _Module, function: str) -> Scope:
    """The chain of functions a function of this name is defined in (module level: ())."""
    for node, scope in _walk(mod.tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            return scope
    return ()


def _literal_args(mod: _Module, function: str, param: str) -> set[str]:
    """The string literals the module passes a function's parameter."""
    position = mod.params[function].index(param)
    found: set[str] = set()
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == function:
            args = [*node.args[position : position + 1], *(kw.value for kw in node.keywords if kw.arg == param)]
            found.update(s for s in (mod.string(a) for a in args) if s is not None)
    return found


def _key(mod: _Module, node: ast.expr, scope: Scope) -> set[str]:
    literal = mod.string(node) if not isinstance(node, ast.Name) or node.id in mod.constants else None
    if literal is not None:
        return {literal}
    if isinstance(node, ast.Name) and scope and node.id in mod.params.get(scope[-1], []):
        return _literal_args(mod, scope[-1], node.id)
    return set()


def _reads(mod: _Module) -> dict[str, set[str]]:
    keys: dict[str, set[str]] = defaultdict(set)
    for node, scope in _walk(mod.tree):
        if isinstance(node, ast.Subscript) and (role := mod.role_of(node.value, scope)):
            keys[role] |= _key(mod, node.slice, scope)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and (role := mod.role_of(node.func.value, scope))
        ):
            keys[role] |= _key(mod, node.args[0], scope)
    return keys


def fact_reads(paths: Iterable[Path]) -> dict[str, set[str]]:
    """role -> the top-level keys of its fact that the code in these files reads."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        mod = _load(path)
        while any([_learn(mod, node, scope) for node, scope in _walk(mod.tree)]):
            pass
        for role, keys in _reads(mod).items():
            found[role] |= keys
    return dict(found)
