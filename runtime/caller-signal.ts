import { EventEmitter } from "node:events";

/**
 * "The caller went away": emits `abort` once. undici accepts an EventEmitter
 * as a request's signal, and this costs a fraction of an AbortController,
 * whose EventTarget machinery was the single largest cost per request in the
 * gateway's profile (bench/README.md). Listen with `once("abort")`.
 */
export class CallerSignal extends EventEmitter {
  aborted = false;

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit("abort");
  }
}
