#!/usr/bin/env python3
"""The module graph of one crate from its sources, and its cycles.

Nodes are the crate's modules (one per file; inline `mod tests` count as
their file). An edge A -> B for every path in A's code (comments stripped)
that names something in B: `crate::…`, `super::…`, `self::…`, or a path
through a child module A declares (`store::find`), `use` groups expanded.
A path resolves to the longest prefix that is a module, so
`crate::tokens::store::children` is an edge to `tokens::store` and
`crate::SOURCE` one to the crate root. Cycles: strongly connected
components of more than one module. Also checked with modules collapsed to
their top-level area (`authority::revoke` -> `authority`)."""
import re, sys, pathlib
from collections import defaultdict

src = pathlib.Path(sys.argv[1])
modules = {}  # module path tuple -> file
for f in sorted(src.rglob('*.rs')):
    rel = f.relative_to(src).with_suffix('')
    parts = list(rel.parts)
    if parts in (['lib'], ['main']):
        parts = [] if parts == ['lib'] else None
    elif parts[-1] == 'mod':
        parts = parts[:-1]
    if parts is not None:
        modules[tuple(parts)] = f

def strip(code):
    code = re.sub(r'/\*.*?\*/', '', code, flags=re.S)
    code = re.sub(r'"(?:\\.|[^"\\])*"', '""', code)  # strings may hold `::`
    return re.sub(r'//[^\n]*', '', code)

def expand(prefix, body):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]."""
    out, depth, start = [], 0, 0
    items = []
    for i, ch in enumerate(body):
        if ch == '{': depth += 1
        elif ch == '}': depth -= 1
        elif ch == ',' and depth == 0:
            items.append(body[start:i]); start = i + 1
    items.append(body[start:])
    for item in items:
        item = item.strip()
        if not item: continue
        m = re.match(r'^([\w:]*?)::\{(.*)\}$', item, re.S)
        if m:
            out += expand(prefix + [p for p in m.group(1).split('::') if p], m.group(2))
        elif item.startswith('{'):
            out += expand(prefix, item[1:-1])
        else:
            out.append(prefix + [p for p in re.split(r'\s+as\s+', item)[0].split('::') if p])
    return out

def resolve(here, path, children):
    if not path: return None
    head, rest = path[0], path[1:]
    if head == 'crate': base = []
    elif head == 'super': base = list(here[:-1]); 
    elif head == 'self': base = list(here)
    elif head in children: base, rest = list(here) + [head], rest
    else: return None
    while rest and rest[0] == 'super':
        base, rest = base[:-1], rest[1:]
    full = base + rest
    for n in range(len(full), -1, -1):
        if tuple(full[:n]) in modules:
            return tuple(full[:n])
    return None

edges = defaultdict(set)
for here, f in modules.items():
    code = strip(f.read_text())
    children = set(re.findall(r'^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;', code, re.M))
    children = {c for c in children if here + (c,) in modules}
    # Inline modules (`mod tests { … }`) are part of their file, but their
    # `super` is the file's module: resolve their paths from inside them.
    spans = []
    for m in re.finditer(r'\bmod\s+(\w+)\s*\{', code):
        depth, j = 1, m.end()
        while depth and j < len(code):
            depth += {'{': 1, '}': -1}.get(code[j], 0); j += 1
        spans.append((m.start(), j, m.group(1)))
    def scope(pos):
        inner = [n for a, b, n in spans if a <= pos < b]
        return here + tuple(inner)
    paths = []
    for m in re.finditer(r'\buse\s+([^;]+);', code):
        paths += [(scope(m.start()), p) for p in expand([], m.group(1))]
    for m in re.finditer(r'(?<![\w:])((?:crate|super|self|\w+)(?:::\w+)+)', code):
        paths.append((scope(m.start()), m.group(1).split('::')))
    for at, p in paths:
        target = resolve(at, p, children)
        if target is not None and target != here:
            edges[here].add(target)

def sccs(nodes, edges):
    index, low, stack, on, out, i = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
        for w in edges.get(v, ()):
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            out.append(comp)
    for v in nodes:
        if v not in index: visit(v)
    return [c for c in out if len(c) > 1]

name = lambda m: '::'.join(('crate',) + m)
print(f'{len(modules)} modules, {sum(len(v) for v in edges.values())} edges')
if '-v' in sys.argv:
    for m in sorted(edges):
        print(f'  {name(m)} -> {", ".join(sorted(name(t) for t in edges[m]))}')
found = sccs(list(modules), edges)
for c in found: print('CYCLE (modules):', ' <-> '.join(sorted(map(name, c))))
top = defaultdict(set)
for a, ts in edges.items():
    for b in ts:
        ta, tb = a[:1], b[:1]
        if ta != tb: top[ta].add(tb)
found_top = sccs(sorted({m[:1] for m in modules}), top)
for c in found_top: print('CYCLE (top-level areas):', ' <-> '.join(sorted(map(name, c))))
print('no cycles' if not found and not found_top else 'cycles found')
sys.exit(1 if found or found_top else 0)
