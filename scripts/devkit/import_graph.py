"""Import cycles in a graph of modules (module -> what it imports), for the layout tests of the
package and of the stand-in."""
from __future__ import annotations


def first_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as the path that closes it (a -> b -> a), or None. Imports of modules
    outside the graph are ignored."""
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(edges[node] & edges.keys()):
            if state.get(nxt) == "open":
                return trail + [node, nxt]
            if nxt not in state and (cycle := visit(nxt, trail + [node])):
                return cycle
        state[node] = "done"
        return None

    for module in sorted(edges):
        if module not in state and (cycle := visit(module, [])):
            return cycle
    return None
