// Layout of the service graph, layered by dependency depth (a Sugiyama-style layering, kept small): a
// service's column is one more than the deepest service that calls it, so requests read left to right;
// within a column services are ordered by the average row of their callers (two sweeps), which keeps most
// edges short and uncrossed for tens of services. Cycles are broken at the edges a depth-first walk meets
// going back (those are drawn as returning arcs). Pure: names in, coordinates out, deterministic.

export const NODE = { width: 240, height: 58, column: 340, row: 86, pad: 24 };

function backEdges(names, edges) {
  const out = new Map(names.map((n) => [n, []]));
  for (const e of edges) out.get(e.source).push(e.destination);
  const state = new Map();
  const back = new Set();
  const visit = (n) => {
    state.set(n, 1);
    for (const m of [...out.get(n)].sort()) {
      if (m === n) continue; // a service calling itself has no column to go back to
      if (state.get(m) === 1) back.add(`${n}\u0000${m}`);
      else if (!state.has(m)) visit(m);
    }
    state.set(n, 2);
  };
  const called = new Set(edges.filter((e) => e.source !== e.destination).map((e) => e.destination));
  for (const n of [...names.filter((x) => !called.has(x)), ...names]) if (!state.has(n)) visit(n);
  return back;
}

/** {columns: Map name→column, back: Set of "source\0destination" edges drawn backwards}. */
export function layers(names, edges) {
  const back = backEdges(names, edges);
  const incoming = new Map(names.map((n) => [n, []]));
  for (const e of edges) {
    if (e.source !== e.destination && !back.has(`${e.source}\u0000${e.destination}`)) incoming.get(e.destination).push(e.source);
  }
  const columns = new Map();
  const depth = (n) => {
    if (!columns.has(n)) {
      columns.set(n, 0);
      columns.set(n, incoming.get(n).reduce((d, m) => Math.max(d, depth(m) + 1), 0));
    }
    return columns.get(n);
  };
  names.forEach(depth);
  return { columns, back, incoming };
}

/** Positions of every service ({x, y} of its box's top left), and the drawing's size. */
export function layout(names, edges) {
  const sorted = [...names].sort();
  const { columns, back, incoming } = layers(sorted, edges);
  const byColumn = [];
  for (const n of sorted) (byColumn[columns.get(n)] = byColumn[columns.get(n)] || []).push(n);
  const rowOf = new Map();
  byColumn.forEach((col) => col.forEach((n, i) => rowOf.set(n, i)));
  for (let sweep = 0; sweep < 2; sweep += 1) {
    for (const col of byColumn.slice(1)) {
      const weight = (n) => {
        const callers = incoming.get(n);
        return callers.length ? callers.reduce((sum, m) => sum + rowOf.get(m), 0) / callers.length : rowOf.get(n);
      };
      col.sort((a, b) => weight(a) - weight(b) || a.localeCompare(b));
      col.forEach((n, i) => rowOf.set(n, i));
    }
  }
  const tallest = Math.max(1, ...byColumn.map((col) => col.length));
  const positions = new Map();
  byColumn.forEach((col, c) => {
    const offset = ((tallest - col.length) * NODE.row) / 2;
    col.forEach((n, i) => positions.set(n, { x: NODE.pad + c * NODE.column, y: NODE.pad + offset + i * NODE.row }));
  });
  const width = NODE.pad * 2 + Math.max(0, byColumn.length - 1) * NODE.column + NODE.width;
  const height = NODE.pad * 2 + (tallest - 1) * NODE.row + NODE.height + 40;
  return { positions, back, width, height };
}
