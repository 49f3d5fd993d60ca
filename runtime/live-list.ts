/**
 * The requests in flight, as an intrusive doubly linked list: each entry
 * carries its own links, so adding and removing one allocates nothing.
 *
 * Not a Set: measured on the plain gateway under 32 connections, the same
 * bookkeeping through a Set (one add and one delete per request) cost ~20 µs
 * of CPU a request (104–110 vs 77–86 µs) and ~40 MiB of peak RSS (157 vs
 * 115 MiB), young collections promoting the requests it held. The same churn
 * in a loop on its own costs nothing, so it is an interaction with the rest
 * of the server's heap that is not pinned down; the list avoids it either way.
 */
export interface Linked<T> {
  prev: T | undefined;
  next: T | undefined;
}

export class LiveList<T extends Linked<T>> implements Iterable<T> {
  #head: T | undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(entry: T): void {
    entry.prev = undefined;
    entry.next = this.#head;
    if (this.#head !== undefined) this.#head.prev = entry;
    this.#head = entry;
    this.#size++;
  }

  delete(entry: T): void {
    if (entry.prev === undefined && this.#head !== entry) return; // not in the list
    if (entry.prev !== undefined) entry.prev.next = entry.next;
    else this.#head = entry.next;
    if (entry.next !== undefined) entry.next.prev = entry.prev;
    entry.prev = entry.next = undefined;
    this.#size--;
  }

  /** Every entry, safe against the current one being deleted while iterating. */
  *[Symbol.iterator](): Iterator<T> {
    for (let e = this.#head; e !== undefined; ) {
      const next = e.next;
      yield e;
      e = next;
    }
  }
}
