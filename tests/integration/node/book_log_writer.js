'use strict';
// A Node service's log shipping as the chapter writes it (tcpServer.writeLog):
// every request packet it receives goes to the logs service as
// {"uri":"/logs","method":"POST","key":0,"params":"<the raw packet text>"} + '¶'.
// One change from the book: a '¶' inside a string is sent escaped (\u00b6), the
// fix of DESIGN.md §1 defect 1, so it cannot split the frame.
//
// usage: node book_log_writer.js HOST PORT RUN_ID
// Sends a mix of packets, whole, split across writes (also inside a multi-byte
// character and inside the '¶' delimiter), several per write, byte by byte; then
// prints one JSON line: {"sent": [log texts...], "received": <bytes read from the socket>}.

const net = require('net');

const [host, port, run] = process.argv.slice(2);
const DELIM = Buffer.from('¶');

function frame(log) { // writeLog's packet, framed; '¶' in strings escaped
    const packet = { uri: '/logs', method: 'POST', key: 0, params: log };
    return Buffer.concat([Buffer.from(JSON.stringify(packet).replace(/¶/g, '\\u00b6')), DELIM]);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function logs() { // the request packets a service received, as text
    const out = [];
    for (let i = 0; i < 60; i++) {
        const trace = `node-${run}-${i}`;
        let text;
        switch (i % 4) {
            case 0: // a plain GET, as the book's gateway sends it (key inside params)
                text = JSON.stringify({ uri: '/goods', method: 'GET', params: { key: i }, 'trace.id': trace });
                break;
            case 1: // the request itself carried an escaped ¶: the log text holds "\u00b6"
                text = JSON.stringify({ uri: '/goods', method: 'POST',
                    params: { name: `a¶b${i}`, key: i }, 'trace.id': trace }).replace(/¶/g, '\\u00b6');
                break;
            case 2: // raw ¶ and Korean text in the log string: escaped by frame()
                text = JSON.stringify({ uri: '/members', method: 'POST',
                    params: { username: `회원¶${i}`, key: i }, 'trace.id': trace });
                break;
            default: // a log text that is not JSON at all is still a log
                text = `plain text log ${trace} ¶ 끝`;
        }
        out.push(text);
    }
    return out;
}

async function main() {
    let received = 0;
    const socket = net.connect({ host, port: Number(port) });
    socket.setNoDelay(true);
    socket.on('data', (data) => { received += data.length; });
    socket.on('error', (err) => { console.error(String(err)); process.exit(2); });
    await new Promise((resolve) => socket.once('connect', resolve));

    const sent = logs();
    const frames = sent.map(frame);
    let i = 0;
    while (i < frames.length) {
        const f = frames[i];
        switch (i % 6) {
            case 0: // whole
                socket.write(f);
                i += 1;
                break;
            case 1: { // split in the middle of the delimiter: C2 | B6
                socket.write(f.subarray(0, f.length - 1));
                await sleep(15);
                socket.write(f.subarray(f.length - 1));
                i += 1;
                break;
            }
            case 2: { // split inside a multi-byte character when there is one, else in the middle
                let cut = f.findIndex((b) => b >= 0xe0); // first byte of a 3-byte character
                cut = cut > 0 ? cut + 1 : f.length >> 1;
                socket.write(f.subarray(0, cut));
                await sleep(15);
                socket.write(f.subarray(cut));
                i += 1;
                break;
            }
            case 3: // three frames in one write
                socket.write(Buffer.concat(frames.slice(i, i + 3)));
                i += 3;
                break;
            case 4: { // byte by byte (the first 40 bytes), then the rest
                for (let b = 0; b < 40; b++) {
                    socket.write(f.subarray(b, b + 1));
                    await sleep(1);
                }
                socket.write(f.subarray(40));
                i += 1;
                break;
            }
            default: { // the end of this frame and the start of the next in one write
                const g = frames[i + 1];
                if (!g) { socket.write(f); i += 1; break; }
                socket.write(f.subarray(0, 10));
                await sleep(15);
                socket.write(Buffer.concat([f.subarray(10), g.subarray(0, 7)]));
                await sleep(15);
                socket.write(g.subarray(7));
                i += 2;
            }
        }
        await sleep(5);
    }
    await sleep(700); // anything the logs service would send arrives by now
    console.log(JSON.stringify({ sent, received }));
    socket.end();
}

main();
