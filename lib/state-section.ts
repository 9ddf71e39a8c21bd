/**
 * A view of one part of the state document, so that each driver reads and changes only its own records
 * while the document stays one file with one atomic write per change (see state-file.ts). A `StateFile`
 * is itself the section of the whole document.
 */

/** Records one owner keeps: read them, or change them in one atomic write (`StateFile` semantics). */
export type StateSection<T> = {
  /** The records as last written; callers must not modify them. */
  readonly current: Readonly<T>;
  /** Applies `mutate` to a copy and persists it before adopting it; if either fails, nothing changes. */
  update<R>(mutate: (draft: T) => R): Promise<R>;
};

/** One plain value of the document (a string, a number), replaced whole. */
export type StateField<T> = {
  readonly current: T;
  set(value: T): Promise<void>;
};

/**
 * The section under `key` of a document; used by the wiring to hand each driver its own records.
 * @example sectionOf(stateFile, "ipam") // StateSection<IpamState>
 */
export function sectionOf<D, K extends keyof D>(whole: StateSection<D>, key: K): StateSection<D[K]> {
  return {
    get current() {
      return whole.current[key];
    },
    update: (mutate) => whole.update((draft) => mutate(draft[key])),
  };
}

/**
 * The plain value under `key` of a document.
 * @example fieldOf(stateFile, "bootId") // StateField<string | undefined>
 */
export function fieldOf<D, K extends keyof D>(whole: StateSection<D>, key: K): StateField<D[K]> {
  return {
    get current() {
      return whole.current[key];
    },
    set: (value) =>
      whole.update((draft) => {
        draft[key] = value;
      }),
  };
}
