"""spaCy's prefix, suffix and infix searches, with the same results in fewer regex steps.

spaCy compiles each affix list into one alternation (`^a|^b|…`, `a$|b$|…`, `a|b|…`) and calls it on
every piece of a run it splits, trying each alternative at every position: most of spaCy's time on
a new run. What the patterns themselves guarantee makes most of those tries needless:
* prefix: every alternative starts at `^`, so a match starts at 0 and its first character is the
  piece's: only the alternatives that can start with that character are tried, with `match`;
* suffix: every alternative ends at `$`, so (in a piece without a line break, where `$` is the end)
  a match ends on the piece's last character: only the alternatives that can end with it are
  tried; and as every alternative but runs of one repeated character (`\\.\\.+`) matches at most K
  characters, the leftmost match starts at n - K or later, or where the trailing run of such a
  character starts: the search begins there (lookbehinds still see the characters before);
* infix: a match starts on a character some alternative can start with: only there, and only
  the alternatives that can start with that character, are tried (`match` at that position).
All matches of one search end where the piece ends, so its leftmost match is the leftmost match of
any of the alternatives that can match at all. Each shortcut is taken only when the compiled pattern
has that shape (read from its parse tree); otherwise the plain search is returned.
`tests/pipelines/test_affixes.py` compares them with spaCy's own on generated pieces.
"""

from __future__ import annotations

import re
from collections.abc import Callable

try:
    import re._constants as C  # Python >= 3.11
    import re._parser as P
except ImportError:  # pragma: no cover  (Python 3.10)
    import sre_constants as C
    import sre_parse as P

BEGINNINGS = ((C.AT, C.AT_BEGINNING), (C.AT, C.AT_BEGINNING_STRING))  # ^ and \A
ZERO_WIDTH = (C.AT, C.ASSERT, C.ASSERT_NOT)
NO_MATCHES: tuple = ()


def _alternatives(pattern: re.Pattern) -> list[tuple[str, P.SubPattern]] | None:
    """The top-level alternatives of `pattern`, as (pattern string, its parse); None where a flag
    changes what its literals and anchors mean, or a back-reference would not survive the split."""
    if pattern.flags & (re.MULTILINE | re.IGNORECASE | re.VERBOSE) or re.search(r"\\[1-9]|\(\?P=", pattern.pattern):
        return None
    src, out, start, depth, i = pattern.pattern, [], 0, 0, 0
    while i < len(src):
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":  # a class: '|' and parentheses inside are literal; a ']' first is too
            i += 1 + (src[i + 1:i + 2] == "^")
            i += src[i:i + 1] == "]"
            while i < len(src) and src[i] != "]":
                i += 2 if src[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            out.append(src[start:i])
            start = i + 1
        i += 1
    out.append(src[start:])
    tree = P.parse(src, pattern.flags)
    branch = tree.data[-1][1][1] if tree.data and tree.data[-1][0] is C.BRANCH else [tree]
    if len(out) != len(branch) and len(out) != 1:  # the parse disagrees on the count
        return None
    return [(piece, P.parse(piece, pattern.flags)) for piece in out]


def _edge_chars(items, last: bool) -> set[str] | None:
    """Characters a match of the parsed `items` can start (or, `last`, end) with; None where any
    can, where it may match nothing, or where this does not read the parse."""
    for op, av in reversed(items) if last else items:
        if op in ZERO_WIDTH:
            continue
        if op is C.LITERAL:
            return {chr(av)}
        if op is C.IN:
            out = set()
            for o, v in av:
                if o is C.LITERAL:
                    out.add(chr(v))
                elif o is C.RANGE:
                    out.update(map(chr, range(v[0], v[1] + 1)))
                else:  # NEGATE, CATEGORY: too wide to list
                    return None
            return out
        if op in (C.MAX_REPEAT, C.MIN_REPEAT) and av[0] >= 1:
            return _edge_chars(av[2].data, last)
        if op is C.SUBPATTERN:
            return None if av[1] & re.IGNORECASE else _edge_chars(av[-1].data, last)
        if op is C.BRANCH:
            sets = [_edge_chars(b.data, last) for b in av[1]]
            return None if any(s is None for s in sets) else set().union(*sets)
        return None
    return None


class _ByChar(dict):
    """Per character: the alternation of the pieces that can start (end) with it, compiled the first
    time a piece starts (ends) with that character, once per distinct set of pieces; None if none can."""

    def __init__(self, alternatives: list[tuple[str, P.SubPattern]], flags: int, last: bool):
        super().__init__()
        self.pieces, self.flags = [piece for piece, _ in alternatives], flags
        edges = [_edge_chars(tree.data, last) for _, tree in alternatives]
        self.anywhere = [k for k, e in enumerate(edges) if e is None]  # may start (end) with any character
        self.kinds: dict[str, list[int]] = {}
        for k, e in enumerate(edges):
            for c in e or ():
                self.kinds.setdefault(c, list(self.anywhere)).append(k)
        self.compiled: dict[tuple[int, ...], re.Pattern | None] = {}

    def __missing__(self, c: str) -> re.Pattern | None:
        key = tuple(sorted(self.kinds.get(c, self.anywhere)))
        if key not in self.compiled:
            self.compiled[key] = re.compile("|".join(self.pieces[k] for k in key), self.flags) if key else None
        self[c] = self.compiled[key]
        return self[c]


def fast_prefix(search: Callable) -> Callable:
    """A function returning what `search` (alternatives each starting at `^`) returns, trying only the
    alternatives that can start with the piece's first character."""
    pattern = search.__self__
    alternatives = _alternatives(pattern)
    if not alternatives or not all(tuple(tree.data[:1]) in ((b,) for b in BEGINNINGS) for _, tree in alternatives):
        return search
    by_first = _ByChar(alternatives, pattern.flags, last=False)

    def prefix_search(s: str):
        if not s:
            return search(s)
        regex = by_first[s[0]]
        return None if regex is None else regex.match(s)

    return prefix_search


def _repeated_char(items) -> str | None:
    """c if the parsed items consume only c's (`c`, `c+`, `c{2,}` …) before `$`, else None."""
    chars = set()
    for op, av in items[:-1]:
        if op is C.LITERAL:
            chars.add(av)
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT) and len(av[2].data) == 1 and av[2].data[0][0] is C.LITERAL:
            chars.add(av[2].data[0][1])
        else:
            return None
    return chr(chars.pop()) if len(chars) == 1 else None


def fast_suffix(search: Callable) -> Callable:
    """A function returning what `search` (alternatives each ending at `$`) returns, trying only the
    alternatives that can end with the piece's last character, from where a match can start."""
    pattern = search.__self__
    alternatives = _alternatives(pattern)
    if not alternatives or any(tree.data[-1:] != [(C.AT, C.AT_END)] for _, tree in alternatives):
        return search
    widest, runs = 0, {}  # the longest bounded match; per repeated character, its shortest run
    for _, tree in alternatives:
        low, high = tree.getwidth()
        if high < C.MAXREPEAT:
            widest = max(widest, high)
        elif (c := _repeated_char(tree.data)) is not None:
            runs[c] = min(runs.get(c, low), low)
        else:
            return search
    by_last = _ByChar(alternatives, pattern.flags, last=True)

    def suffix_search(s: str):
        if not s or "\n" in s:  # `$` also matches before a final line break
            return search(s)
        regex = by_last[s[-1]]
        if regex is None:
            return None
        n = len(s)
        start = n - widest
        shortest = runs.get(s[-1])
        if shortest is not None:
            run = n - len(s.rstrip(s[-1]))
            if run >= shortest:
                start = min(start, n - run)
        return regex.search(s, max(start, 0))

    return suffix_search


def fast_infix(finditer: Callable) -> Callable:
    """A function returning `finditer`'s matches (as a list, which is what spaCy makes of them),
    trying at each character an infix can start with only the alternatives that can start with it."""
    pattern = finditer.__self__
    alternatives = _alternatives(pattern)
    if not alternatives:
        return finditer
    by_first = _ByChar(alternatives, pattern.flags, last=False)
    if by_first.anywhere:  # an alternative that may start anywhere: no character to look for
        return finditer
    starts = frozenset(by_first.kinds)

    def infix_finditer(s: str):
        if starts.isdisjoint(s):
            return NO_MATCHES
        out, end = [], 0
        for i, c in enumerate(s):  # as finditer: the leftmost match, then the next from its end
            if i >= end and c in starts and (m := by_first[c].match(s, i)) is not None:
                out.append(m)
                end = m.end()
        return out

    return infix_finditer
