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
``writable`` rules in this language, so the executable model, the reference
interpreter (:func:`evaluate`) and the Z3 encoding (:func:`to_z3`) all come from
one source text.  The executable model is each policy compiled once: to one
generated Python function (:func:`to_function`), and with the buffer variables
fixed to the runs of ``pfn`` over which its value is constant
(:class:`CompiledPolicy`), so that the boot walk stores a run of PTEs with the
same outcome at once.  :func:`specialize` fixes some variables (``ioremap``).

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
from functools import partial
from itertools import pairwise
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
    "CompiledPolicy",
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
    "specialize",
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


# --------------------------------------------------------------------------- compiler


def _shl(x: int, s: int) -> int:
    return (x << s) & MASK if s < WIDTH else 0


class _Source:
    """Python source for an expression whose parameters are named `a0`, `a1`, ... (their order in `index`).

    Nested (one Python expression) unless `flat`: then one assignment per node, for trees deeper than Python's
    parser nests parentheses (200). Both agree: the expressions are total and pure on well-typed values, so
    evaluating both operands of `and` / `or` in the flat form changes nothing but the time.
    """

    def __init__(self, index: Mapping[str, int], flat: bool) -> None:
        self.index = index
        self.flat = flat
        self.lines: list[str] = []
        self.int_params: set[int] = set()  # reduced modulo 2**64 on entry

    def _emit(self, text: str) -> str:
        if not self.flat:
            return text
        name = f"t{len(self.lines)}"
        self.lines.append(f"    {name} = {text}")
        return name

    def gen(self, e: Expr, ctx: str) -> str:
        """`ctx` is the type the parent expects: "int", "bool" or "any" (the top)."""
        if not free_variables(e):
            return repr(evaluate(e, {}))
        m = MASK
        match e:
            case Var(name):
                i = self.index[name]
                if ctx == "int":
                    self.int_params.add(i)
                    return f"a{i}"
                if ctx == "bool":
                    return f"a{i}"
                return self._emit(f"(a{i} if a{i}.__class__ is bool else a{i} & {m})")
            case Call(func, arg):
                x = self.gen(arg, "int")
                if func == "PFN_PHYS":
                    return self._emit(f"({x} << 12 & {m})")
                if func == "PFN_DOWN":
                    return self._emit(f"({x} >> 12)")
                return self._emit(f"(({x} + 4095 & {m}) >> 12)")
            case BinOp(op, left, right):
                lhs = self.gen(left, "int")
                if op == "<<" and not free_variables(right):
                    c = evaluate(right, {})
                    return "0" if c >= WIDTH else self._emit(f"({lhs} << {c} & {m})")
                rhs = self.gen(right, "int")
                if op == "<<":
                    return self._emit(f"_shl({lhs}, {rhs})")
                if op == ">>":
                    return self._emit(f"({lhs} >> {rhs})")
                return self._emit(f"({lhs} {op} {rhs} & {m})")
            case Compare(ops, operands):
                parts = [self.gen(operands[0], "int")]
                for op, operand in zip(ops, operands[1:], strict=True):
                    parts += [op, self.gen(operand, "int")]
                return self._emit(f"({' '.join(parts)})")
            case And(left, right) | Or(left, right):
                word = "and" if isinstance(e, And) else "or"
                return self._emit(f"({self.gen(left, 'bool')} {word} {self.gen(right, 'bool')})")
            case Not(operand):
                return self._emit(f"(not {self.gen(operand, 'bool')})")
        raise TypeError(f"not a policy expression: {e!r}")

    def function(self, expr: Expr, n: int) -> Callable[..., int | bool]:
        body = self.gen(expr, "any")
        args = ", ".join(f"a{i}" for i in range(n))
        lines = [f"def policy_fn({args}):"]
        lines += [f"    a{i} = a{i} & {MASK}" for i in sorted(self.int_params)]
        lines += self.lines
        lines.append(f"    return {body}")
        namespace: dict[str, object] = {"_shl": _shl}
        exec(compile("\n".join(lines), "<policy>", "exec"), namespace)
        return namespace["policy_fn"]  # type: ignore[return-value]


def to_function(expr: Expr, params: Sequence[str]) -> Callable[..., int | bool]:
    """Compile ``expr`` into one Python function taking ``params`` positionally.

    The function is generated Python source (``compile``d once): one expression with the operators of the
    language written out, constant subexpressions folded, integer arguments reduced modulo 2**64 on entry.
    Agrees with :func:`evaluate` on well-typed arguments; for speed it does not type-check them. Every free
    variable of ``expr`` must be in ``params``.
    """
    params = list(params)
    if len(set(params)) != len(params):
        raise ValueError(f"duplicate parameter names in {params!r}")
    missing = free_variables(expr) - set(params)
    if missing:
        raise ValueError(f"expression uses variable(s) not in params: {', '.join(sorted(missing))}")
    index = {name: i for i, name in enumerate(params)}
    try:
        fn = _Source(index, flat=False).function(expr, len(params))
    except (SyntaxError, RecursionError, MemoryError):  # nested deeper than Python's parser goes
        fn = _Source(index, flat=True).function(expr, len(params))
    fn.__doc__ = f"({', '.join(params)}) -> {unparse(expr)}"
    return fn


def specialize(expr: Expr, values: Mapping[str, int | bool]) -> Expr:
    """``expr`` with the variables of ``values`` replaced by their values and what becomes constant folded
    (``x and false`` is ``false``, ``x or false`` is ``x``, ...): the same value as ``expr`` wherever those
    variables have those values."""

    def const(v: int | bool) -> Expr:
        return Bool(v) if type(v) is bool else Num(v & MASK)

    def go(e: Expr) -> Expr:
        match e:
            case Var(name) if name in values:
                return const(values[name])
            case Num() | Bool() | Var():
                return e
            case Call(func, arg):
                out: Expr = Call(func, go(arg))
            case BinOp(op, left, right):
                out = BinOp(op, go(left), go(right))
            case Compare(ops, operands):
                out = Compare(ops, tuple(go(x) for x in operands))
            case And(left, right) | Or(left, right):
                a, b = go(left), go(right)
                absorbing, neutral = (
                    (Bool(False), Bool(True)) if isinstance(e, And) else (Bool(True), Bool(False))
                )
                if absorbing in (a, b):
                    return absorbing
                if a == neutral:
                    return b
                if b == neutral:
                    return a
                out = And(a, b) if isinstance(e, And) else Or(a, b)
            case Not(operand):
                out = Not(go(operand))
            case _:
                raise TypeError(f"not a policy expression: {e!r}")
        return const(evaluate(out, {})) if not free_variables(out) else out

    return go(expr)


# --------------------------------------------------------------------------- runs over one variable


class _Wraps(Exception):
    """An operand wraps around 2**64 inside the range: split it."""


class _NotMonotone(Exception):
    """An operand is not monotone in the variable (it occurs on both sides, or as a shift count)."""


def _monotone(e: Expr, over: str, a: int, b: int, env: Mapping[str, int | bool]) -> tuple[int, int, int]:
    """`(direction, e(a), e(b))` for integer expression `e` of variable `over` on `[a, b]`: `e` is monotone there,
    non-decreasing (1), non-increasing (-1) or independent of `over` (0). Each operation that reduces modulo
    2**64 is checked not to wrap between the ends; a monotone function that does not wrap stays monotone."""
    match e:
        case Num(value):
            value &= MASK
            return 0, value, value
        case Var(name):
            if name != over:
                v = env[name]
                return 0, v, v  # type: ignore[return-value]
            if a >> WIDTH != b >> WIDTH:
                raise _Wraps
            return 1, a & MASK, b & MASK
        case Call(func, arg):
            d, x, y = _monotone(arg, over, a, b, env)
            if func == "PFN_DOWN":
                return d, x >> 12, y >> 12
            u, w = (x << 12, y << 12) if func == "PFN_PHYS" else (x + 4095, y + 4095)
            if d and u >> WIDTH != w >> WIDTH:
                raise _Wraps
            u, w = u & MASK, w & MASK
            return (d, u, w) if func == "PFN_PHYS" else (d, u >> 12, w >> 12)
        case BinOp(op, left, right):
            dl, lx, ly = _monotone(left, over, a, b, env)
            dr, rx, ry = _monotone(right, over, a, b, env)
            if dl and dr:
                raise _NotMonotone
            if op == ">>":
                return (dl, lx >> rx, ly >> rx) if not dr else (-dr, lx >> rx, lx >> ry)
            if op == "<<":
                if dr:
                    raise _NotMonotone
                if rx >= WIDTH:
                    return dl, 0, 0
                d, u, w = dl, lx << rx, ly << rx
            elif op == "+":
                d, u, w = dl or dr, lx + rx, ly + ry
            elif op == "-":
                d, u, w = dl or -dr, lx - rx, ly - ry
            else:  # "*": a constant factor, never negative
                d, u, w = dl or dr, lx * rx, ly * ry
            if d and u >> WIDTH != w >> WIDTH:
                raise _Wraps
            return d, u & MASK, w & MASK
    raise _NotMonotone  # not an integer expression


def _first_flip(q: Callable[[int], bool], a: int, b: int) -> int | None:
    """The first `p` in `(a, b]` with `q(p) != q(a)`, for `q` monotone on `[a, b]`; None if `q(a) == q(b)`."""
    start = q(a)
    if q(b) == start:
        return None
    while b - a > 1:  # q(a) == start != q(b)
        m = (a + b) // 2
        if q(m) == start:
            a = m
        else:
            b = m
    return b


# Below this many values a range that wraps, or a policy not monotone in the variable, is evaluated value by value.
_ENUMERATE_BELOW = 64


class CompiledPolicy:
    """A policy compiled once (:func:`to_function`), and its answers over a range of one variable at a time.

    ``runs(lo, hi, *others)``: with the other parameters fixed, a policy of comparisons on ``over`` (``pfn``) is
    constant between the points where one of its comparisons changes value, and each comparison of a monotone
    operand with a constant changes value at most twice. Those points are found by bisection with the compiled
    operands, so a range of any length costs a few dozen calls; where an operand wraps around 2**64 the range is
    split, and where ``over`` is on both sides of a comparison (or a shift count) it is evaluated value by value.
    Exact either way: every run's value is the policy's value at each of its points.
    """

    def __init__(self, expr: Expr, params: Sequence[str], over: str = "pfn") -> None:
        params = tuple(params)
        if over not in params:
            raise ValueError(f"{over!r} is not one of the parameters {params!r}")
        self.expr = expr
        self.params = params
        self.over = over
        self.others = tuple(p for p in params if p != over)
        self.fn = to_function(expr, params)
        self._fn_over = to_function(expr, (over, *self.others))  # `over` first: (value, *others)
        # The comparisons that depend on `over`: (its side, the side as a function, the other side as a function)
        self._atoms: list[tuple[Expr, Callable[..., int | bool], Callable[..., int | bool]]] = []
        self._both_sides = False
        seen: set[tuple[Expr, Expr]] = set()
        stack = [expr]
        while stack:
            e = stack.pop()
            stack.extend(_children(e))
            if not isinstance(e, Compare):
                continue
            for x, y in zip(e.operands, e.operands[1:], strict=False):
                dx, dy = over in free_variables(x), over in free_variables(y)
                if dx and dy:
                    self._both_sides = True
                elif dx or dy:
                    side, other = (x, y) if dx else (y, x)
                    if (side, other) not in seen:
                        seen.add((side, other))
                        self._atoms.append(
                            (side, to_function(side, (over, *self.others)), to_function(other, self.others))
                        )

    def __call__(self, *args: int | bool) -> int | bool:
        return self.fn(*args)

    def runs(self, lo: int, hi: int, *others: int | bool) -> list[tuple[int, int, int | bool]]:
        """``[lo, hi)`` as maximal runs ``(start, end, value)`` of the policy's value, ascending; ``others`` are
        the values of the other parameters, in order."""
        if len(others) != len(self.others):
            raise TypeError(f"runs() takes the values of {', '.join(self.others)} after lo and hi")
        out: list[tuple[int, int, int | bool]] = []
        if lo < hi:
            env = {n: v if type(v) is bool else v & MASK for n, v in zip(self.others, others, strict=True)}
            self._runs(out, lo, hi, others, env)
        return out

    def _runs(self, out: list, lo: int, hi: int, others: tuple, env: Mapping[str, int | bool]) -> None:
        if self._both_sides:
            return self._enumerate(out, lo, hi, others)
        cuts: set[int] = set()
        for side, side_fn, other_fn in self._atoms:
            try:
                _monotone(side, self.over, lo, hi - 1, env)
            except _Wraps:
                if hi - lo <= _ENUMERATE_BELOW:
                    return self._enumerate(out, lo, hi, others)
                mid = (lo + hi) // 2
                self._runs(out, lo, mid, others, env)
                return self._runs(out, mid, hi, others, env)
            except _NotMonotone:
                return self._enumerate(out, lo, hi, others)
            c = other_fn(*others)
            # every comparison of the side with c is a function of these two, each monotone in `over`
            for strict in (False, True):
                p = _first_flip(partial(_above, side_fn, others, c, strict), lo, hi - 1)
                if p is not None:
                    cuts.add(p)
        bounds = [lo, *sorted(cuts), hi]
        fn = self._fn_over
        for a, b in pairwise(bounds):
            _add_run(out, a, b, fn(a, *others))
        return None

    def _enumerate(self, out: list, lo: int, hi: int, others: tuple) -> None:
        fn = self._fn_over
        for p in range(lo, hi):
            _add_run(out, p, p + 1, fn(p, *others))


def _above(side_fn: Callable[..., int | bool], others: tuple, c: int, strict: bool, p: int) -> bool:
    """`side(p) > c` (`strict`) or `side(p) >= c`."""
    v = side_fn(p, *others)
    return v > c if strict else v >= c


def _add_run(out: list[tuple[int, int, int | bool]], lo: int, hi: int, value: int | bool) -> None:
    if out and out[-1][1] == lo and out[-1][2] == value:
        out[-1] = (out[-1][0], hi, value)
    else:
        out.append((lo, hi, value))


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
