'use strict';
// Preloaded (node -r) into the chapter's Node gate and goods for bench/mesh.py: their console
// printing off, as the figures were taken. Only the 'listening' line (the port) is
// written; every per-request line ('request', 'reply', 'noti') and stderr diagnostic is dropped.
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, ...rest) =>
    String(chunk).startsWith('{"event":"listening"') ? write(chunk, ...rest) : true;
process.stderr.write = () => true;
console.error = () => {};
