// A tiny observable value (get/set/subscribe) and a hook that re-renders on change.
import { useEffect, useState } from './html.js';

export function store(initial) {
  let value = initial;
  const subs = new Set();
  return {
    get: () => value,
    set(v) {
      if (v === value) return;
      value = v;
      for (const f of [...subs]) f(v);
    },
    subscribe(f) {
      subs.add(f);
      return () => subs.delete(f);
    },
  };
}

export function useStore(s) {
  const [, force] = useState(0);
  useEffect(() => s.subscribe(() => force((n) => n + 1)), [s]);
  return s.get();
}
