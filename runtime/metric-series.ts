// Per-request metrics aggregated where the request path can afford them, and
// handed to prom-client only when Prometheus scrapes.
//
// prom-client's own observe()/inc() validate and hash the label object on
// every call (0.3–0.7 µs each); a request touches about ten series, which
// would be most of the gateway's 5% budget. Here a request finds its series
// once (one Map lookup by a key of configured ids) and each observation is a
// bucket scan and two adds. prom-client still renders the text, so names,
// HELP/TYPE lines and escaping are its own.
//
//   Family ── series(key, labels) ──► Series { labels, counts[], sum, count }   (histogram)
//                                     Series { labels, value }                  (counter)
import { Counter, Histogram, type MetricObjectWithValues, type MetricValueWithName, type Registry } from "prom-client";

export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]) {
        this.counts[i]++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

export class CounterSeries {
  value = 0;
  constructor(readonly labels: Readonly<Record<string, string>>) {}
}

/** Series by a caller-built key; labels are built only when a key is first seen. */
class Family<S> {
  readonly #series = new Map<string, S>();

  constructor(private readonly make: (labels: Record<string, string>) => S) {}

  series(key: string, labels: () => Record<string, string>): S {
    let s = this.#series.get(key);
    if (s === undefined) this.#series.set(key, (s = this.make(labels())));
    return s;
  }

  all(): IterableIterator<S> {
    return this.#series.values();
  }
}

export class HistogramFamily extends Family<HistogramSeries> {
  constructor(
    readonly name: string,
    help: string,
    labelNames: readonly string[],
    readonly bounds: readonly number[],
    registry: Registry,
  ) {
    super((labels) => new HistogramSeries(labels, bounds));
    new ScrapedHistogram(this, help, labelNames, registry);
  }
}

/** Counts kept as integers where they can be (nano-USD); `scale` divides them for display. */
export class CounterFamily extends Family<CounterSeries> {
  constructor(name: string, help: string, labelNames: readonly string[], registry: Registry, scale = 1) {
    super((labels) => new CounterSeries(labels));
    const family = this;
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of family.all()) this.inc(s.labels, s.value / scale);
      },
    });
  }
}

type Row = { labels: Record<string, string | number>; value: number; metricName: string };

/** A prom-client Histogram whose values come from a HistogramFamily at scrape time. */
class ScrapedHistogram extends Histogram {
  constructor(
    private readonly family: HistogramFamily,
    private readonly helpText: string,
    labelNames: readonly string[],
    registry: Registry,
  ) {
    super({ name: family.name, help: helpText, labelNames, buckets: [...family.bounds], registers: [registry] });
  }

  // prom-client renders what getForPromString (text) or get (JSON) returns; both read the family.
  async getForPromString() {
    return this.#rows();
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    return this.#rows() as never;
  }

  #rows() {
    const { name, bounds } = this.family;
    const values: Row[] = [];
    for (const s of this.family.all()) {
      let cumulative = 0;
      for (let i = 0; i < bounds.length; i++) {
        cumulative += s.counts[i];
        values.push({ labels: { ...s.labels, le: bounds[i] }, value: cumulative, metricName: `${name}_bucket` });
      }
      values.push({ labels: { ...s.labels, le: "+Inf" }, value: s.count, metricName: `${name}_bucket` });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${name}_count` });
    }
    return { name, help: this.helpText, type: "histogram" as const, values, aggregator: "sum" as const };
  }
}
