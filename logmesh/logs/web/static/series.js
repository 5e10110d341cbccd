// The histogram's stacks: totals per `by` value, biggest first, each bucket's parts, the legend
// (the API names its two sentinels, "no value" and "the rest", in the answer's `sentinels`),
// and a sparkline's points. Pure.

/** Over all buckets: the highest bucket count, each value's total, the values biggest first. */
export function stackTotals(buckets) {
  let max = 0;
  const totals = new Map();
  for (const b of buckets) {
    max = Math.max(max, b.count || 0);
    for (const [k, v] of Object.entries(b.by || {})) totals.set(k, (totals.get(k) || 0) + v);
  }
  const order = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a));
  return { max, totals, order };
}

/**
 * by[k] when by holds k itself, else 0: the values are stored data, and a service named
 * "__proto__" or "constructor" is one (by["constructor"] of a bucket without it is Object).
 */
export function countOf(by, k) {
  return by && Object.hasOwn(by, k) ? by[k] : 0;
}

/** One bucket's stack, bottom up, as [value, count]; [[null, count]] when it is not split. */
export function bucketParts(bucket, order) {
  const by = bucket.by && Object.keys(bucket.by).length ? bucket.by : null;
  return by ? order.filter((k) => countOf(by, k)).map((k) => [k, by[k]]) : [[null, bucket.count]];
}

/**
 * The legend's entries for the values in order, by the API's sentinels ({none, other}; absent
 * when the answer has none): kind "none" (events without the field), "other" (the values past
 * the most frequent ones) or "value"; and `named`, the plain values. field: the stack-by field the labels name.
 */
export function legendEntries(order, sentinels, field = "service.name") {
  const sn = sentinels || {};
  const svc = field === "service.name";
  const kindOf = (k) => (k === sn.none ? "none" : k === sn.other ? "other" : "value");
  const entries = order.map((k) => {
    const kind = kindOf(k);
    return {
      key: k,
      kind,
      label: kind === "none" ? (svc ? "(no service)" : `(no ${field})`) : k,
      title: kind === "none" ? (svc ? "Show only events without a service" : `Show only events without ${field}`)
        : kind === "other" ? (svc ? "Show only the other services" : `Show only the other values of ${field}`)
          : `Show only ${k}`,
    };
  });
  return { entries, named: entries.filter((e) => e.kind === "value").map((e) => e.key) };
}

/** A polyline's points for values in a w x h box: left to right, the largest at the top (1 px margin). */
export function sparkPoints(vals, w, h) {
  const max = Math.max(...vals, 1);
  return vals.map((v, i) => `${((i / Math.max(vals.length - 1, 1)) * (w - 2) + 1).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`).join(" ");
}
