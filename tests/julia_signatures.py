"""Static reading of the Julia engine's sources with tree-sitter-julia (no Julia needed).

``julia_signatures()`` maps every top-level function of module ``PyoscEngine`` (its own file and the
files it ``include``s) to ``(positional arity, frozenset of keyword names)``: the signature the
Python bridge must call with. ``julia_methods()`` keeps every method, ``julia_exports()`` the exported
names, ``syntax_errors(path)`` the ERROR/MISSING nodes of one file.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "julia" / "PyoscEngine"
MODULE_FILE = PACKAGE / "src" / "PyoscEngine.jl"


class Method(NamedTuple):
    """One Julia method: positional parameters (``optional`` of them have defaults), keyword names,
    whether it takes positional varargs (``args...``), and where it is defined."""

    name: str
    positional: int
    optional: int
    keywords: frozenset[str]
    varargs: bool
    file: str
    line: int


@lru_cache(maxsize=1)
def _parser():
    import tree_sitter
    import tree_sitter_julia

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_julia.language()))


def _parse(path: Path):
    source = path.read_bytes()
    return _parser().parse(source), source


def _text(node, source: bytes) -> str:
    return source[node.start_byte:node.end_byte].decode("utf-8")


def syntax_errors(path: Path) -> list[str]:
    """``line:column: ERROR|MISSING <text>`` for every error node of a Julia file (empty: it parses)."""
    tree, source = _parse(path)
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            kind = "MISSING" if node.is_missing else "ERROR"
            row, col = node.start_point
            found.append(f"{row + 1}:{col + 1}: {kind} {_text(node, source)[:60]!r}")
        stack.extend(node.children)
    return sorted(found)


def _parameter_name(node, source: bytes) -> str | None:
    """The name bound by a parameter node (``x``, ``x::T``, ``x::T = v``)."""
    if node.type == "identifier":
        return _text(node, source)
    if node.type in ("typed_expression", "named_argument"):
        first = node.children[0] if node.children else None
        return None if first is None else _parameter_name(first, source)
    return None


def _signature(call, source: bytes, file: str) -> Method | None:
    """A Method from the ``call_expression`` of a definition (None for callable structs and operators)."""
    callee = call.children[0]
    if callee.type != "identifier":
        return None
    args = next((c for c in call.children if c.type == "argument_list"), None)
    if args is None:
        return None
    positional = optional = 0
    keywords: set[str] = set()
    varargs = False
    after_semicolon = False
    for child in args.children:
        if child.type == ";":
            after_semicolon = True
        elif child.type in ("(", ")", ","):
            continue
        elif after_semicolon:
            if child.type == "splat_expression":
                keywords.add("...")
            else:
                name = _parameter_name(child, source)
                if name:
                    keywords.add(name)
        elif child.type == "splat_expression":
            varargs = True
        else:
            positional += 1
            optional += child.type == "named_argument"
    return Method(_text(callee, source), positional, optional, frozenset(keywords), varargs, file,
                  call.start_point[0] + 1)


def _definition_call(node):
    """The call_expression naming a function definition node (long or short form), else None."""
    if node.type == "macrocall_expression":  # @inline function ... end
        inner = next((c for c in node.children if c.type == "macro_argument_list"), None)
        return None if inner is None or not inner.children else _definition_call(inner.children[0])
    if node.type == "function_definition":
        sig = next((c for c in node.children if c.type == "signature"), None)
        target = sig.children[0] if sig is not None and sig.children else None
    elif node.type == "assignment":
        target = node.children[0] if node.children else None
    else:
        return None
    while target is not None and target.type in ("where_expression", "typed_expression"):
        target = target.children[0]  # f(x) where T, f(x)::R
    return target if target is not None and target.type == "call_expression" else None


def _top_level(node):
    """Statements at the top level of a file or of the module it defines."""
    for child in node.children:
        if child.type == "module_definition":
            yield from _top_level(child)
        else:
            yield child


def _includes(node, source: bytes) -> list[str]:
    """Files ``include("...")``d at the top level."""
    out = []
    for stmt in _top_level(node):
        if stmt.type == "call_expression" and _text(stmt.children[0], source) == "include":
            args = next((c for c in stmt.children if c.type == "argument_list"), None)
            strings = [c for c in (args.children if args else []) if c.type == "string_literal"]
            if strings:
                out.append(_text(strings[0], source).strip('"'))
    return out


def _files(module_file: Path) -> list[Path]:
    tree, source = _parse(module_file)
    return [module_file] + [module_file.parent / name for name in _includes(tree.root_node, source)]


def julia_methods(module_file: Path = MODULE_FILE) -> dict[str, list[Method]]:
    """Every top-level named method of the module and its included files, by function name."""
    methods: dict[str, list[Method]] = {}
    for path in _files(module_file):
        tree, source = _parse(path)
        for stmt in _top_level(tree.root_node):
            call = _definition_call(stmt)
            if call is None:
                continue
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            method = _signature(call, source, str(where))
            if method is not None:
                methods.setdefault(method.name, []).append(method)
    return methods


def julia_signatures(module_file: Path = MODULE_FILE) -> dict[str, tuple[int, frozenset[str]]]:
    """``{function_name: (positional arity, keyword names)}`` for the module's top-level functions.

    A function whose methods disagree (different arities or keywords) is left out; see
    :func:`julia_methods` for those.
    """
    out = {}
    for name, methods in julia_methods(module_file).items():
        shapes = {(m.positional, m.keywords) for m in methods}
        if len(shapes) == 1:
            out[name] = shapes.pop()
    return out


def julia_exports(module_file: Path = MODULE_FILE) -> set[str]:
    """Names in the module's ``export`` statements."""
    tree, source = _parse(module_file)
    names: set[str] = set()
    for stmt in _top_level(tree.root_node):
        if stmt.type == "export_statement":
            names.update(_text(c, source) for c in stmt.children if c.type == "identifier")
    return names
