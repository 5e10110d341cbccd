// Server-sent events as /api/v1/tail sends them, read from a fetch stream. Pure.

/**
 * buf (the unfinished text so far) plus a new chunk: the data of every complete event (its
 * "data:" lines joined by newlines; events without data are skipped) and the text left over.
 */
export function feed(buf, chunk) {
  let rest = buf + chunk.replace(/\r\n?/g, "\n");
  const data = [];
  let cut;
  while ((cut = rest.indexOf("\n\n")) >= 0) {
    const block = rest.slice(0, cut);
    rest = rest.slice(cut + 2);
    const lines = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(l[5] === " " ? 6 : 5));
    if (lines.length) data.push(lines.join("\n"));
  }
  return { data, rest };
}
