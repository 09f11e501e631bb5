"""A tiny expression language for kernel-variant pagetable policies.

Linux's early-boot pagetable code under Xen PV decides, page by page, which
frames must be mapped read-only and which are handed back to the allocator.
``mask_rw_pte`` in ``arch/x86/xen/mmu.c`` forces PTEs read-only for frames in
the pagetable buffer, e.g. (depending on the kernel version)::

    pgt_buf_start <= pfn < pgt_buf_top
    pgt_buf_start <= pfn < pgt_buf_end and not ioremap

and ``pagetable_reserve`` in ``arch/x86/mm/init.c`` reserves
``PFN_PHYS(pgt_buf_start) .. PFN_PHYS(pgt_buf_end)`` and frees the rest of the
buffer.  Each kernel variant states its ``readonly`` / ``reserve`` /
``writable`` rules in this language, so the executable model (:func:`to_function`),
the reference interpreter (:func:`evaluate`) and the Z3 encoding (:func:`to_z3`)
all come from one source text.

Grammar (lowest precedence first)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := shift (("<" | "<=" | ">" | ">=" | "==" | "!=") shift)*   # chained, like Python
    shift   := add (("<<" | ">>") add)*
    add     := mul (("+" | "-") mul)*
    mul     := atom ("*" atom)*
    atom    := INT | NAME | "true" | "false" | FUNC "(" expr ")" | "(" expr ")"

Integers are decimal or hex (``0x1f``), with Python-style ``_`` separators.
Names are the variables given to the parser (default: ``pfn``,
``pgt_buf_start``, ``pgt_buf_end``, ``pgt_buf_top`` as integers and
``ioremap`` as a boolean) and the constants ``PAGE_SHIFT`` (12) and
``PAGE_SIZE`` (4096).  Functions: ``PFN_PHYS(x) = x << 12``,
``PFN_DOWN(x) = x >> 12``, ``PFN_UP(x) = (x + 4095) >> 12``.

Semantics are those of C ``u64``: ``+ - * <<`` wrap modulo 2**64, ``>>`` is a
logical shift, comparisons are unsigned, and a shift by 64 or more yields 0
(C leaves that undefined; we pick 0, which is also what Z3's ``bvshl`` /
``bvlshr`` do, so all three back ends agree).  Integer inputs are reduced
modulo 2**64, as a conversion to ``u64`` would.  ``a <= pfn < b`` means
``a <= pfn and pfn < b`` with ``pfn`` evaluated once.

Arithmetic and comparison operands must be integers, ``and`` / ``or`` / ``not``
operands booleans; :func:`parse_policy` additionally requires a boolean result.
Errors are :class:`PolicyError` with a 1-based column (a character offset into
the text, counting newlines as characters).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import z3

__all__ = [
    "CONSTANTS",
    "DEFAULT_VARIABLES",
    "FUNCTIONS",
    "MASK",
    "WIDTH",
    "And",
    "BinOp",
    "Bool",
    "Call",
    "Compare",
    "Expr",
    "Not",
    "Num",
    "Or",
    "PolicyError",
    "Var",
    "evaluate",
    "free_variables",
    "parse_expr",
    "parse_policy",
    "to_function",
    "to_z3",
    "unparse",
]

WIDTH = 64
MASK = (1 << WIDTH) - 1

DEFAULT_VARIABLES: Mapping[str, str] = {
    "pfn": "int",
    "pgt_buf_start": "int",
    "pgt_buf_end": "int",
    "pgt_buf_top": "int",
    "ioremap": "bool",
}
CONSTANTS: Mapping[str, int] = {"PAGE_SHIFT": 12, "PAGE_SIZE": 4096}
FUNCTIONS: tuple[str, ...] = ("PFN_DOWN", "PFN_PHYS", "PFN_UP")
KEYWORDS = frozenset({"and", "or", "not", "true", "false"})
BINOPS = ("+", "-", "*", "<<", ">>")
CMPOPS = ("<", "<=", ">", ">=", "==", "!=")

_KIND_NAME = {"int": "an integer", "bool": "a boolean"}


class PolicyError(ValueError):
    """A syntax or type error in policy text, located by a 1-based column."""

    def __init__(self, column: int, message: str) -> None:
        super().__init__(f"column {column}: {message}")
        self.column = column
        self.message = message


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Num:
    value: int


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Bool:
    value: bool


@dataclass(frozen=True)
class Call:
    func: str
    arg: Expr


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Compare:
    ops: tuple[str, ...]
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class And:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    operand: Expr


Expr = Num | Var | Bool | Call | BinOp | Compare | And | Or | Not

# --------------------------------------------------------------------------- tokenizer

_OPERATORS = ("<<", ">>", "<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "(", ")")
_BAD_CHAR_HINTS = {
    "&": "use 'and'",
    "|": "use 'or'",
    "!": "use 'not'",
    "~": "bitwise not is not supported",
    "=": "use '==' for equality",
    "/": "division is not supported",
    "%": "modulo is not supported",
}


@dataclass(frozen=True)
class _Tok:
    kind: str  # "int", "name", "op", "end"
    text: str
    col: int
    value: int = 0

    def describe(self) -> str:
        return "end of expression" if self.kind == "end" else repr(self.text)


def _is_name_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        col = i + 1
        if c.isascii() and c.isdigit():
            j = i
            while j < n and _is_name_char(text[j]):
                j += 1
            lit = text[i:j]
            try:
                value = int(lit, 16) if lit[:2].lower() == "0x" else int(lit, 10)
            except ValueError:
                raise PolicyError(col, f"invalid integer literal {lit!r}") from None
            if value > MASK:
                raise PolicyError(col, f"integer literal {lit} does not fit in {WIDTH} bits")
            toks.append(_Tok("int", lit, col, value))
            i = j
        elif c.isascii() and (c.isalpha() or c == "_"):
            j = i
            while j < n and _is_name_char(text[j]):
                j += 1
            toks.append(_Tok("name", text[i:j], col))
            i = j
        else:
            for op in _OPERATORS:
                if text.startswith(op, i):
                    toks.append(_Tok("op", op, col))
                    i += len(op)
                    break
            else:
                hint = _BAD_CHAR_HINTS.get(c)
                raise PolicyError(col, f"unexpected character {c!r}" + (f" ({hint})" if hint else ""))
    toks.append(_Tok("end", "", n + 1))
    return toks


# --------------------------------------------------------------------------- parser

# Left binding powers of infix operators.
_BP_OR, _BP_AND, _BP_NOT, _BP_CMP, _BP_SHIFT, _BP_ADD, _BP_MUL, _BP_ATOM = range(1, 9)
_INFIX_BP = {
    "or": _BP_OR,
    "and": _BP_AND,
    **dict.fromkeys(CMPOPS, _BP_CMP),
    "<<": _BP_SHIFT,
    ">>": _BP_SHIFT,
    "+": _BP_ADD,
    "-": _BP_ADD,
    "*": _BP_MUL,
}


def _check_variables(variables: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, kind in variables.items():
        if not (name.isidentifier() and name.isascii()):
            raise ValueError(f"invalid variable name {name!r}")
        if name in KEYWORDS or name in CONSTANTS or name in FUNCTIONS:
            raise ValueError(f"variable name {name!r} is reserved")
        if kind not in _KIND_NAME:
            raise ValueError(f"variable {name!r} has kind {kind!r}; expected 'int' or 'bool'")
        out[name] = kind
    return out


class _Parser:
    def __init__(self, text: str, variables: Mapping[str, str]) -> None:
        self.toks = _tokenize(text)
        self.pos = 0
        self.variables = variables
        self.level = 0  # nesting of `parse` calls (parentheses, `not`, right operands)

    @property
    def tok(self) -> _Tok:
        return self.toks[self.pos]

    def _infix_op(self) -> str | None:
        t = self.tok
        if (t.kind == "op" and t.text in _INFIX_BP) or (t.kind == "name" and t.text in ("and", "or")):
            return t.text
        return None

    def expect_type(self, node: tuple[Expr, str, int], kind: str, what: str) -> Expr:
        expr, got, col = node
        if got != kind:
            raise PolicyError(col, f"{what} must be {_KIND_NAME[kind]}, got {_KIND_NAME[got]}")
        return expr

    def parse(self, min_bp: int) -> tuple[Expr, str, int]:
        self.level += 1
        try:
            return self._parse(min_bp)
        finally:
            self.level -= 1

    def _parse(self, min_bp: int) -> tuple[Expr, str, int]:
        if self.level > MAX_DEPTH:
            raise PolicyError(self.tok.col, f"expression nested too deeply (more than {MAX_DEPTH} levels)")
        lhs = self.prefix()
        while True:
            op = self._infix_op()
            if op is None:
                break
            bp = _INFIX_BP[op]
            if bp <= min_bp:
                break
            op_tok = self.tok
            self.pos += 1
            col = lhs[2]
            if op in ("and", "or"):
                left = self.expect_type(lhs, "bool", f"left operand of '{op}'")
                right = self.expect_type(self.parse(bp), "bool", f"right operand of '{op}'")
                lhs = ((And if op == "and" else Or)(left, right), "bool", col)
            elif op in CMPOPS:
                ops = [op]
                operands = [self.expect_type(lhs, "int", f"left operand of '{op}'")]
                while True:
                    operands.append(self.expect_type(self.parse(bp), "int", f"right operand of '{op}'"))
                    nxt = self._infix_op()
                    if nxt not in CMPOPS:
                        break
                    op = nxt
                    ops.append(op)
                    self.pos += 1
                lhs = (Compare(tuple(ops), tuple(operands)), "bool", col)
            else:
                left = self.expect_type(lhs, "int", f"left operand of '{op_tok.text}'")
                right = self.expect_type(self.parse(bp), "int", f"right operand of '{op_tok.text}'")
                lhs = (BinOp(op, left, right), "int", col)
        return lhs

    def prefix(self) -> tuple[Expr, str, int]:
        t = self.tok
        col = t.col
        if t.kind == "int":
            self.pos += 1
            return Num(t.value), "int", col
        if t.kind == "op" and t.text == "(":
            self.pos += 1
            expr, kind, _ = self.parse(0)
            self.expect_op(")")
            return expr, kind, col
        if t.kind == "name":
            name = t.text
            if name == "not":
                self.pos += 1
                operand = self.expect_type(self.parse(_BP_NOT), "bool", "operand of 'not'")
                return Not(operand), "bool", col
            if name in ("true", "false"):
                self.pos += 1
                return Bool(name == "true"), "bool", col
            if name in ("and", "or"):
                raise PolicyError(col, f"expected an operand but found {t.describe()}")
            self.pos += 1
            nxt = self.tok
            if name in FUNCTIONS:
                if not (nxt.kind == "op" and nxt.text == "("):
                    raise PolicyError(
                        nxt.col, f"expected '(' after function '{name}' but found {nxt.describe()}"
                    )
                self.pos += 1
                arg = self.expect_type(self.parse(0), "int", f"argument of {name}()")
                self.expect_op(")")
                return Call(name, arg), "int", col
            if nxt.kind == "op" and nxt.text == "(":
                raise PolicyError(col, f"unknown function '{name}' (known: {', '.join(FUNCTIONS)})")
            if name in CONSTANTS:
                return Num(CONSTANTS[name]), "int", col
            if name in self.variables:
                return Var(name), self.variables[name], col
            known = ", ".join(self.variables) or "none"
            msg = f"unknown variable '{name}' (known: {known})"
            import difflib

            close = difflib.get_close_matches(name, [*self.variables, *CONSTANTS], n=1)
            if close:
                msg += f"; did you mean '{close[0]}'?"
            raise PolicyError(col, msg)
        raise PolicyError(col, f"expected an operand but found {t.describe()}")

    def expect_op(self, op: str) -> None:
        t = self.tok
        if not (t.kind == "op" and t.text == op):
            raise PolicyError(t.col, f"expected '{op}' but found {t.describe()}")
        self.pos += 1


# A policy is a handful of comparisons; this bound keeps the recursive parser, evaluator and Z3 compiler far
# from Python's recursion limit whatever a file contains.
MAX_DEPTH = 100


def _children(e: Expr) -> tuple[Expr, ...]:
    if isinstance(e, Call):
        return (e.arg,)
    if isinstance(e, BinOp | And | Or):
        return (e.left, e.right)
    if isinstance(e, Compare):
        return e.operands
    if isinstance(e, Not):
        return (e.operand,)
    return ()


def _depth(expr: Expr) -> int:
    """Nesting depth of an expression tree (iteratively: the tree may be too deep to recurse over)."""
    deepest, stack = 0, [(expr, 1)]
    while stack:
        e, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((child, d + 1) for child in _children(e))
    return deepest


def _parse(text: str, variables: Mapping[str, str] | None) -> tuple[Expr, str, int]:
    p = _Parser(text, _check_variables(DEFAULT_VARIABLES if variables is None else variables))
    if p.tok.kind == "end":
        raise PolicyError(1, "empty expression: expected an operand")
    try:
        result = p.parse(0)
    except RecursionError:
        raise PolicyError(p.tok.col, f"expression nested too deeply (more than {MAX_DEPTH} levels)") from None
    if p.tok.kind != "end":
        raise PolicyError(p.tok.col, f"expected end of expression but found {p.tok.describe()}")
    if _depth(result[0]) > MAX_DEPTH:
        raise PolicyError(1, f"expression nested too deeply (more than {MAX_DEPTH} levels): split it up")
    return result


def parse_expr(text: str, variables: Mapping[str, str] | None = None) -> Expr:
    """Parse and type-check an integer or boolean expression.

    ``variables`` maps each allowed variable name to ``"int"`` or ``"bool"``;
    it defaults to :data:`DEFAULT_VARIABLES`.
    """
    return _parse(text, variables)[0]


def parse_policy(text: str, variables: Mapping[str, str] | None = None) -> Expr:
    """Parse a policy rule: like :func:`parse_expr` but the result must be boolean."""
    expr, kind, col = _parse(text, variables)
    if kind != "bool":
        raise PolicyError(col, f"policy must be a boolean expression, got {_KIND_NAME[kind]}")
    return expr


# --------------------------------------------------------------------------- utilities


def free_variables(expr: Expr) -> frozenset[str]:
    """The variable names occurring in ``expr``."""
    out: set[str] = set()
    stack: list[Expr] = [expr]
    while stack:
        e = stack.pop()
        match e:
            case Var(name):
                out.add(name)
            case Call(_, arg) | Not(arg):
                stack.append(arg)
            case BinOp(_, left, right) | And(left, right) | Or(left, right):
                stack.extend((left, right))
            case Compare(_, operands):
                stack.extend(operands)
    return frozenset(out)


_BINOP_PREC = {"<<": _BP_SHIFT, ">>": _BP_SHIFT, "+": _BP_ADD, "-": _BP_ADD, "*": _BP_MUL}


def _prec(e: Expr) -> int:
    match e:
        case Or():
            return _BP_OR
        case And():
            return _BP_AND
        case Not():
            return _BP_NOT
        case Compare():
            return _BP_CMP
        case BinOp(op):
            return _BINOP_PREC[op]
    return _BP_ATOM


def _unparse_at(e: Expr, min_prec: int) -> str:
    s = unparse(e)
    return f"({s})" if _prec(e) < min_prec else s


def unparse(expr: Expr) -> str:
    """Canonical text for ``expr``; ``parse_expr(unparse(e)) == e`` for well-typed ``e``."""
    match expr:
        case Num(value):
            return str(value)
        case Var(name):
            return name
        case Bool(value):
            return "true" if value else "false"
        case Call(func, arg):
            return f"{func}({unparse(arg)})"
        case BinOp(op, left, right):
            p = _BINOP_PREC[op]
            return f"{_unparse_at(left, p)} {op} {_unparse_at(right, p + 1)}"
        case Compare(ops, operands):
            parts = [_unparse_at(operands[0], _BP_CMP + 1)]
            for op, operand in zip(ops, operands[1:], strict=True):
                parts += [op, _unparse_at(operand, _BP_CMP + 1)]
            return " ".join(parts)
        case And(left, right):
            return f"{_unparse_at(left, _BP_AND)} and {_unparse_at(right, _BP_AND + 1)}"
        case Or(left, right):
            return f"{_unparse_at(left, _BP_OR)} or {_unparse_at(right, _BP_OR + 1)}"
        case Not(operand):
            return f"not {_unparse_at(operand, _BP_NOT)}"
    raise TypeError(f"not a policy expression: {expr!r}")


# --------------------------------------------------------------------------- reference interpreter

_ARITH: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: (a + b) & MASK,
    "-": lambda a, b: (a - b) & MASK,
    "*": lambda a, b: (a * b) & MASK,
    "<<": lambda a, b: (a << b) & MASK if b < WIDTH else 0,
    ">>": lambda a, b: a >> b,
}
_FUNCS: dict[str, Callable[[int], int]] = {
    "PFN_PHYS": lambda x: (x << 12) & MASK,
    "PFN_DOWN": lambda x: x >> 12,
    "PFN_UP": lambda x: ((x + 4095) & MASK) >> 12,
}
_CMP: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _as_int(v: int | bool) -> int:
    if type(v) is bool or not isinstance(v, int):
        raise TypeError(f"expected an integer, got {v!r}")
    return v


def _as_bool(v: int | bool) -> bool:
    if type(v) is not bool:
        raise TypeError(f"expected a boolean, got {v!r}")
    return v


def _eval(e: Expr, env: Mapping[str, int | bool]) -> int | bool:
    match e:
        case Num(value):
            return value & MASK
        case Var(name):
            v = env[name]
            if type(v) is bool:
                return v
            if isinstance(v, int):
                return v & MASK
            raise TypeError(f"variable {name!r} has non-integer, non-boolean value {v!r}")
        case Bool(value):
            return value
        case Call(func, arg):
            return _FUNCS[func](_as_int(_eval(arg, env)))
        case BinOp(op, left, right):
            return _ARITH[op](_as_int(_eval(left, env)), _as_int(_eval(right, env)))
        case Compare(ops, operands):
            x = _as_int(_eval(operands[0], env))
            for op, operand in zip(ops, operands[1:], strict=True):
                y = _as_int(_eval(operand, env))
                if not _CMP[op](x, y):
                    return False
                x = y
            return True
        case And(left, right):
            return _as_bool(_eval(left, env)) and _as_bool(_eval(right, env))
        case Or(left, right):
            return _as_bool(_eval(left, env)) or _as_bool(_eval(right, env))
        case Not(operand):
            return not _as_bool(_eval(operand, env))
    raise TypeError(f"not a policy expression: {e!r}")


def evaluate(expr: Expr, env: Mapping[str, int | bool]) -> int | bool:
    """Evaluate ``expr`` (the slow reference semantics).

    Integer values in ``env`` are reduced modulo 2**64; a missing variable is
    a ``ValueError``, a value of the wrong type a ``TypeError``.
    """
    missing = free_variables(expr) - env.keys()
    if missing:
        raise ValueError(f"no value for variable(s): {', '.join(sorted(missing))}")
    return _eval(expr, env)


# --------------------------------------------------------------------------- closure compiler

_Fn = Callable[[tuple], "int | bool"]


def _compile(e: Expr, index: Mapping[str, int], ctx: str) -> tuple[bool, object]:
    """Compile ``e`` to ``(True, constant)`` or ``(False, closure over the argument tuple)``.

    ``ctx`` is ``"int"``, ``"bool"`` or ``"any"``: the type the parent expects.
    """
    if not free_variables(e):
        return True, evaluate(e, {})
    match e:
        case Var(name):
            i = index[name]
            if ctx == "int":
                return False, lambda a: a[i] & MASK
            if ctx == "bool":
                return False, lambda a: a[i]

            def any_var(a: tuple) -> int | bool:
                v = a[i]
                return v if type(v) is bool else v & MASK

            return False, any_var
        case Call(func, arg):
            f = _fn(arg, index, "int")
            if func == "PFN_PHYS":
                return False, lambda a: (f(a) << 12) & MASK
            if func == "PFN_DOWN":
                return False, lambda a: f(a) >> 12
            return False, lambda a: ((f(a) + 4095) & MASK) >> 12
        case BinOp(op, left, right):
            return False, _compile_binop(op, left, right, index)
        case Compare(ops, operands):
            return False, _compile_compare(ops, operands, index)
        case And(left, right):
            lf, rf = _fn(left, index, "bool"), _fn(right, index, "bool")
            return False, lambda a: lf(a) and rf(a)
        case Or(left, right):
            lf, rf = _fn(left, index, "bool"), _fn(right, index, "bool")
            return False, lambda a: lf(a) or rf(a)
        case Not(operand):
            f = _fn(operand, index, "bool")
            return False, lambda a: not f(a)
    raise TypeError(f"not a policy expression: {e!r}")


def _fn(e: Expr, index: Mapping[str, int], ctx: str) -> _Fn:
    is_const, v = _compile(e, index, ctx)
    if is_const:
        return lambda a: v
    return v  # type: ignore[return-value]


def _compile_binop(op: str, left: Expr, right: Expr, index: Mapping[str, int]) -> _Fn:
    r_const, rv = _compile(right, index, "int")
    if r_const:
        c: int = rv  # type: ignore[assignment]
        # x OP const: the common shape (pgt_buf_end - 1, pfn << 12, ...).
        if op in ("+", "-", "*") and isinstance(left, Var):
            i = index[left.name]  # the mask below also reduces the raw argument
            if op == "+":
                return lambda a: (a[i] + c) & MASK
            if op == "-":
                return lambda a: (a[i] - c) & MASK
            return lambda a: (a[i] * c) & MASK
        f = _fn(left, index, "int")
        if op == "+":
            return lambda a: (f(a) + c) & MASK
        if op == "-":
            return lambda a: (f(a) - c) & MASK
        if op == "*":
            return lambda a: (f(a) * c) & MASK
        if op == "<<":
            if c >= WIDTH:
                return lambda a: 0
            return lambda a: (f(a) << c) & MASK
        return lambda a: f(a) >> c
    lf, rf = _fn(left, index, "int"), rv
    if op == "+":
        return lambda a: (lf(a) + rf(a)) & MASK
    if op == "-":
        return lambda a: (lf(a) - rf(a)) & MASK
    if op == "*":
        return lambda a: (lf(a) * rf(a)) & MASK
    if op == "<<":

        def shl(a: tuple) -> int:
            x, s = lf(a), rf(a)
            return (x << s) & MASK if s < WIDTH else 0

        return shl
    return lambda a: lf(a) >> rf(a)


def _compile_compare(ops: tuple[str, ...], operands: tuple[Expr, ...], index: Mapping[str, int]) -> _Fn:
    fs = [_fn(x, index, "int") for x in operands]
    if len(ops) == 1:
        lf, rf = fs
        op = ops[0]
        if op == "<":
            return lambda a: lf(a) < rf(a)
        if op == "<=":
            return lambda a: lf(a) <= rf(a)
        if op == ">":
            return lambda a: lf(a) > rf(a)
        if op == ">=":
            return lambda a: lf(a) >= rf(a)
        if op == "==":
            return lambda a: lf(a) == rf(a)
        return lambda a: lf(a) != rf(a)
    if len(ops) == 2:
        f0, f1, f2 = fs
        c0, c1 = _CMP[ops[0]], _CMP[ops[1]]

        def chain2(a: tuple) -> bool:
            y = f1(a)
            return c0(f0(a), y) and c1(y, f2(a))

        return chain2
    cmps = [_CMP[op] for op in ops]
    pairs = list(zip(cmps, fs[1:], strict=True))
    first = fs[0]

    def chain(a: tuple) -> bool:
        x = first(a)
        for cmp, g in pairs:
            y = g(a)
            if not cmp(x, y):
                return False
            x = y
        return True

    return chain


def to_function(expr: Expr, params: Sequence[str]) -> Callable[..., int | bool]:
    """Compile ``expr`` into nested Python closures taking ``params`` positionally.

    Agrees with :func:`evaluate` on well-typed arguments (integers are reduced
    modulo 2**64).  For speed the returned function does not type-check its
    arguments.  Every free variable of ``expr`` must be in ``params``.
    """
    params = list(params)
    if len(set(params)) != len(params):
        raise ValueError(f"duplicate parameter names in {params!r}")
    missing = free_variables(expr) - set(params)
    if missing:
        raise ValueError(f"expression uses variable(s) not in params: {', '.join(sorted(missing))}")
    index = {name: i for i, name in enumerate(params)}
    body = _fn(expr, index, "any")
    n = len(params)

    def policy_fn(*args: int | bool) -> int | bool:
        if len(args) != n:
            raise TypeError(f"policy function takes {n} positional arguments ({', '.join(params)})")
        return body(args)

    policy_fn.__doc__ = f"({', '.join(params)}) -> {unparse(expr)}"
    return policy_fn


# --------------------------------------------------------------------------- Z3


def to_z3(expr: Expr, env: Mapping[str, z3.ExprRef]) -> z3.ExprRef:
    """Encode ``expr`` as a Z3 term: integers are 64-bit bit-vectors, comparisons unsigned.

    ``env`` maps integer variables to ``BitVec(.., 64)`` terms and boolean
    variables to ``Bool`` terms (plain Python ints/bools are accepted too).
    """
    import z3

    def var(name: str) -> z3.ExprRef:
        if name not in env:
            raise ValueError(f"no Z3 term for variable {name!r}")
        v = env[name]
        if isinstance(v, bool):
            return z3.BoolVal(v)
        if isinstance(v, int):
            return z3.BitVecVal(v & MASK, WIDTH)
        if z3.is_bv(v) and v.size() != WIDTH:
            raise TypeError(f"variable {name!r} is a {v.size()}-bit vector; expected {WIDTH} bits")
        return v

    def int_term(e: Expr) -> z3.BitVecRef:
        t = go(e)
        if not z3.is_bv(t):
            raise TypeError(f"expected a bit-vector for {unparse(e)!r}, got {t.sort()}")
        return t

    def bool_term(e: Expr) -> z3.BoolRef:
        t = go(e)
        if not z3.is_bool(t):
            raise TypeError(f"expected a boolean for {unparse(e)!r}, got {t.sort()}")
        return t

    shift = z3.BitVecVal(12, WIDTH)

    def go(e: Expr) -> z3.ExprRef:
        match e:
            case Num(value):
                return z3.BitVecVal(value & MASK, WIDTH)
            case Var(name):
                return var(name)
            case Bool(value):
                return z3.BoolVal(value)
            case Call(func, arg):
                x = int_term(arg)
                if func == "PFN_PHYS":
                    return x << shift
                if func == "PFN_DOWN":
                    return z3.LShR(x, shift)
                return z3.LShR(x + z3.BitVecVal(4095, WIDTH), shift)
            case BinOp(op, left, right):
                a, b = int_term(left), int_term(right)
                if op == "+":
                    return a + b
                if op == "-":
                    return a - b
                if op == "*":
                    return a * b
                if op == "<<":
                    return a << b
                return z3.LShR(a, b)
            case Compare(ops, operands):
                terms = [int_term(x) for x in operands]
                fns = {"<": z3.ULT, "<=": z3.ULE, ">": z3.UGT, ">=": z3.UGE}
                conj = []
                for op, a, b in zip(ops, terms, terms[1:], strict=False):
                    if op == "==":
                        conj.append(a == b)
                    elif op == "!=":
                        conj.append(a != b)
                    else:
                        conj.append(fns[op](a, b))
                return conj[0] if len(conj) == 1 else z3.And(*conj)
            case And(left, right):
                return z3.And(bool_term(left), bool_term(right))
            case Or(left, right):
                return z3.Or(bool_term(left), bool_term(right))
            case Not(operand):
                return z3.Not(bool_term(operand))
        raise TypeError(f"not a policy expression: {e!r}")

    return go(expr)
