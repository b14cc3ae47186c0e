#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Module call graph of the daemon's C sources: file A -> file B when A calls a
non-static function that B alone defines (definitions from universal-ctags).
Prints the cycles (strongly connected components of more than one file) and
exits 1 when there is any. Usage: modgraph.py DIR..."""
import re, subprocess, sys, os, shutil
CTAGS = shutil.which('ctags-universal') or shutil.which('ctags')
if CTAGS is None:
    print('universal-ctags is not installed (apt-get install universal-ctags)')
    sys.exit(77)
files = []
for d in sys.argv[1:]:
    for root, _, names in os.walk(d):
        files += [os.path.join(root, n) for n in names if n.endswith('.c')]
defs = {}
for f in files:
    out = subprocess.run([CTAGS, '-x', '--c-kinds=f', f], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split(None, 4)
        if len(parts) == 5 and parts[1] == 'function' and not re.match(r'\s*static\b', parts[4]):
            defs.setdefault(parts[0], set()).add(f)
owner = {n: next(iter(fs)) for n, fs in defs.items() if len(fs) == 1}
def code(f):
    s = open(f, errors='replace').read()
    s = re.sub(r'/\*.*?\*/', ' ', s, flags=re.S)
    s = re.sub(r'//[^\n]*', ' ', s)
    return re.sub(r'"(\\.|[^"\\])*"', '""', s)
edges = {f: set() for f in files}
for f in files:
    for name in set(re.findall(r'\b([A-Za-z_]\w*)\s*\(', code(f))):
        g = owner.get(name)
        if g and g != f:
            edges[f].add(g)
index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def visit(v):
    index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index: visit(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in files:
    if v not in index: visit(v)
for c in sccs:
    print('cycle:', ' '.join(c))
print(f'{len(files)} files, {sum(len(e) for e in edges.values())} call edges, {len(sccs)} cycles')
sys.exit(1 if sccs else 0)
