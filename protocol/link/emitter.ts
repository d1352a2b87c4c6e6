/** A minimal typed event emitter (no Node `events` in the browser bundle). */
export class Emitter<E extends { [K in keyof E]: (...args: never[]) => void }> {
  private readonly listeners = new Map<keyof E, Set<E[keyof E]>>();

  on<K extends keyof E>(ev: K, f: E[K]): () => void {
    let set = this.listeners.get(ev);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(ev, set);
    }
    set.add(f);
    return () => set.delete(f);
  }

  emit<K extends keyof E>(ev: K, ...args: Parameters<E[K]>): void {
    const set = this.listeners.get(ev);
    if (set === undefined) return;
    for (const f of [...set]) (f as (...a: Parameters<E[K]>) => void)(...args);
  }
}
