/**
 * The only way views build DOM: createElement + textContent. There is deliberately no helper that
 * takes HTML, so peer-supplied text (messages, names, room names) can only ever become a text node.
 */
export interface ElementOptions {
  readonly text?: string;
  readonly className?: string;
  readonly testid?: string;
  readonly attrs?: Readonly<Record<string, string>>;
  readonly on?: { readonly [K in keyof HTMLElementEventMap]?: (ev: HTMLElementEventMap[K]) => void };
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  opts: ElementOptions = {},
  children: ReadonlyArray<Node | null | undefined | false> = [],
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (opts.className !== undefined) el.className = opts.className;
  if (opts.testid !== undefined) el.dataset['testid'] = opts.testid;
  if (opts.attrs !== undefined) for (const [k, v] of Object.entries(opts.attrs)) el.setAttribute(k, v);
  if (opts.text !== undefined) el.textContent = opts.text;
  if (opts.on !== undefined) {
    for (const [type, fn] of Object.entries(opts.on)) el.addEventListener(type, fn as EventListener);
  }
  for (const child of children) if (child) el.append(child);
  return el;
}

/** Reports an error from an async UI action to the notice area instead of dropping it. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
