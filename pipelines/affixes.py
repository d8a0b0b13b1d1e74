"""spaCy's prefix, suffix and infix searches, with the same results in fewer regex steps.

spaCy compiles each affix list into one alternation and calls it on every piece of a run it splits:
`suffix_search` (`a$|b$|…`) tries each alternative at every position of the piece, most of spaCy's
time on a new run. What the patterns themselves guarantee makes most of those tries needless:
* suffix: every alternative ends at `$` and, but for runs of one repeated character (`\\.\\.+`),
  matches at most K characters, so (on a piece without a line break, where `$` is the end) the
  leftmost match starts at n - K or later, or where the trailing run of such a character starts:
  searching from there (lookbehinds still see the characters before) finds the same match;
* prefix: every alternative starts at `^`, so `match` finds what `search` finds;
* infix: a match starts on a character some alternative can consume first; a piece holding none
  of those has no infix.
Each shortcut is taken only when the compiled pattern has that shape (read from its parse tree);
otherwise the plain search is returned. `tests/pipelines/test_affixes.py` compares them with spaCy's.
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


def _alternatives(pattern: re.Pattern) -> list | None:
    """The alternatives of `pattern` (one top-level alternation, or one alternative), parsed; None
    where a flag changes what its literals and anchors mean."""
    if pattern.flags & (re.MULTILINE | re.IGNORECASE | re.VERBOSE):
        return None
    tree = P.parse(pattern.pattern, pattern.flags)
    if len(tree.data) == 1 and tree.data[0][0] is C.BRANCH:
        return list(tree.data[0][1][1])
    return [tree]


def _anchored(items) -> bool:
    """Whether every match of the parsed `items` starts at the beginning of the string."""
    if not items:
        return False
    op, av = items[0]
    if (op, av) in BEGINNINGS:
        return True
    return op is C.BRANCH and all(_anchored(b.data) for b in av[1])


def fast_prefix(search: Callable) -> Callable:
    """`match` of `search`'s pattern where every alternative starts at `^`, else `search` itself."""
    pattern = search.__self__
    alts = _alternatives(pattern)
    return pattern.match if alts is not None and all(_anchored(alt.data) for alt in alts) else search


def _repeated_char(alt) -> str | None:
    """c if the alternative consumes only c's (`c`, `c+`, `c{2,}` …) before `$`, else None."""
    chars = set()
    for op, av in alt.data[:-1]:
        if op is C.LITERAL:
            chars.add(av)
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT) and len(av[2].data) == 1 and av[2].data[0][0] is C.LITERAL:
            chars.add(av[2].data[0][1])
        else:
            return None
    return chr(chars.pop()) if len(chars) == 1 else None


def fast_suffix(search: Callable) -> Callable:
    """A function returning what `search` (alternatives each ending at `$`) returns, searching only
    from where a match can start."""
    pattern = search.__self__
    alts = _alternatives(pattern)
    if not alts or any(alt.data[-1:] != [(C.AT, C.AT_END)] for alt in alts):
        return search
    widest, runs = 0, {}  # the longest bounded match; per repeated character, its shortest run
    for alt in alts:
        low, high = alt.getwidth()
        if high < C.MAXREPEAT:
            widest = max(widest, high)
        elif (c := _repeated_char(alt)) is not None:
            runs[c] = min(runs.get(c, low), low)
        else:
            return search

    def suffix_search(s: str):
        if "\n" in s:  # `$` also matches before a final line break
            return search(s)
        n = len(s)
        start = n - widest
        shortest = runs.get(s[-1:])
        if shortest is not None:
            run = n - len(s.rstrip(s[-1]))
            if run >= shortest:
                start = min(start, n - run)
        return pattern.search(s, max(start, 0))

    return suffix_search


def _first_chars(items) -> set[str] | None:
    """Characters a match of the parsed `items` can start with; None if not read here (or empty-matching)."""
    for op, av in items:
        if op in (C.ASSERT, C.ASSERT_NOT, C.AT):
            continue  # zero-width: the match starts at the next item
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
            return _first_chars(av[2].data)
        if op is C.SUBPATTERN:
            return None if av[1] & re.IGNORECASE else _first_chars(av[-1].data)
        if op is C.BRANCH:
            sets = [_first_chars(b.data) for b in av[1]]
            return None if any(s is None for s in sets) else set().union(*sets)
        return None
    return None


NO_MATCHES: tuple = ()


def fast_infix(finditer: Callable) -> Callable:
    """A function returning `finditer`'s matches, or none at once when the piece holds no character
    an infix can start with."""
    alts = _alternatives(finditer.__self__)
    firsts = [_first_chars(alt.data) for alt in alts or ()]
    if not alts or any(f is None for f in firsts):
        return finditer
    starts = frozenset().union(*firsts)

    def infix_finditer(s: str):
        return NO_MATCHES if starts.isdisjoint(s) else finditer(s)

    return infix_finditer
