'use strict';
// The chapter's Node.js `logs` service (DESIGN.md §1, seeds/ch12), rebuilt as a
// standalone benchmark peer: no npm packages, no distributor connection.
//
// As written (default) it reproduces the book exactly where it matters for
// ingest: node's `cluster` master forks one worker and re-forks it whenever it
// dies; the worker's tcpServer receive loop merges/splits text on '¶' with the
// book's per-connection remainder (and its stale-remainder bug, DESIGN.md
// defect 2, which kills the worker under load); each packet is first passed to
// writeLog() (the logs service has no log client, so it prints the packet) and
// then to onRead(), which formats
//   <toLocaleDateString>\t<remoteAddress>\t<remotePort>\t<JSON>\n
// prints it with console.log and appends it to a fs.createWriteStream(.., {flags: 'a'}).
//
// Usage:
//   node book_logs.js [port] [--port N] [--host H] [--output FILE]
//                     [--quiet] [--fixed-framing] [--no-cluster]
// Environment (flags win): BOOK_LOGS_PORT, BOOK_LOGS_HOST, BOOK_LOGS_OUTPUT,
//   BOOK_LOGS_QUIET=1, BOOK_LOGS_FIXED_FRAMING=1, BOOK_LOGS_NO_CLUSTER=1.
//
// --quiet          no console.log per packet (writeLog's and onRead's)
// --fixed-framing  a byte-level splitter on C2 B6 with an exact per-connection
//                  remainder; empty frames are skipped and a bad frame is
//                  counted and dropped without killing the connection
// --no-cluster     run the server in this process (no master/worker)

const cluster = require('cluster');
const fs = require('fs');
const net = require('net');

function options() {
    const env = process.env;
    const o = {
        port: Number(env.BOOK_LOGS_PORT || 9040),
        host: env.BOOK_LOGS_HOST || '127.0.0.1',
        output: env.BOOK_LOGS_OUTPUT || './log.txt',
        quiet: env.BOOK_LOGS_QUIET === '1',
        fixed: env.BOOK_LOGS_FIXED_FRAMING === '1',
        cluster: env.BOOK_LOGS_NO_CLUSTER !== '1',
    };
    const argv = process.argv.slice(2);
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--port') o.port = Number(argv[++i]);
        else if (a === '--host') o.host = argv[++i];
        else if (a === '--output') o.output = argv[++i];
        else if (a === '--quiet') o.quiet = true;
        else if (a === '--fixed-framing') o.fixed = true;
        else if (a === '--no-cluster') o.cluster = false;
        else if (/^\d+$/.test(a)) o.port = Number(a); // the book: process.argv[2]
        else {
            console.error(`book_logs.js: unknown argument ${a}`);
            process.exit(2);
        }
    }
    return o;
}

const DELIM = Buffer.from('¶', 'utf8'); // C2 B6

class tcpServer {
    constructor(name, port, urls, opts) {
        this.context = { port: port, name: name, urls: urls };
        this.merge = {};
        this.opts = opts;
        this.logTcpClient = null; // the logs service never connects to a log client
        this.badFrames = 0;

        this.server = net.createServer((socket) => {
            this.onCreate(socket);
            socket.on('error', (exception) => { this.onClose(socket); });
            socket.on('close', () => { this.onClose(socket); });
            if (opts.fixed) {
                this.fixedReceiver(socket);
            } else {
                this.bookReceiver(socket);
            }
        });
        this.server.on('error', (err) => {
            console.error('book_logs.js: server error', err.message);
            process.exit(1);
        });
        this.server.listen(port, opts.host, () => {
            if (!opts.quiet) console.log('listen', this.server.address());
        });
    }

    // The chapter's receive loop, verbatim in substance.
    bookReceiver(socket) {
        socket.on('data', (data) => {
            var key = socket.remoteAddress + ":" + socket.remotePort;
            var sz = this.merge[key] ? this.merge[key] + data.toString() : data.toString();
            var arr = sz.split('¶');
            for (var n in arr) {
                if (sz.charAt(sz.length - 1) != '¶' && n == arr.length - 1) {
                    this.merge[key] = arr[n];
                    break;
                } else if (arr[n] == "") {
                    break;
                } else {
                    this.writeLog(arr[n]);
                    this.onRead(socket, JSON.parse(arr[n]));
                }
            }
        });
    }

    // A correct splitter: bytes, not text; exact remainder; survives bad frames.
    fixedReceiver(socket) {
        let rest = null;
        socket.on('data', (data) => {
            const buf = rest ? Buffer.concat([rest, data]) : data;
            let start = 0;
            let at;
            while ((at = buf.indexOf(DELIM, start)) !== -1) {
                if (at > start) {
                    const text = buf.toString('utf8', start, at);
                    let packet;
                    try {
                        packet = JSON.parse(text);
                    } catch (e) {
                        packet = undefined;
                        this.badFrames++;
                        if (!this.opts.quiet) console.error('bad frame dropped:', e.message);
                    }
                    if (packet !== undefined) {
                        this.writeLog(text);
                        this.onRead(socket, packet);
                    }
                }
                start = at + DELIM.length;
            }
            rest = start < buf.length ? buf.subarray(start) : null;
        });
    }

    onCreate(socket) {
        if (!this.opts.quiet) console.log("onCreate", socket.remoteAddress, socket.remotePort);
    }

    onClose(socket) {
        if (!this.opts.quiet) console.log("onClose", socket.remoteAddress, socket.remotePort);
    }

    writeLog(log) {
        if (this.logTcpClient) {
            // never taken here: the logs service does not ship its own logs
        } else if (!this.opts.quiet) {
            console.log(log);
        }
    }
}

class logs extends tcpServer {
    constructor(opts) {
        super("logs", opts.port, ["POST/logs"], opts);
        this.writestream = fs.createWriteStream(opts.output, { flags: 'a' });
        // No connectToDistributor(): the benchmark runs this peer standalone.
    }

    onRead(socket, data) {
        const sz = new Date().toLocaleDateString() + '\t' + socket.remoteAddress + '\t' + socket.remotePort + '\t' + JSON.stringify(data) + '\n';
        if (!this.opts.quiet) console.log(sz);
        this.writestream.write(sz);
    }
}

const opts = options();
if (opts.cluster && cluster.isPrimary) {
    let stopping = false;
    cluster.fork();
    cluster.on('exit', (worker, code, signal) => {
        // stderr, so a harness can count restarts even with --quiet
        console.error(`worker ${worker.process.pid} died`);
        if (!stopping) cluster.fork();
    });
    for (const sig of ['SIGTERM', 'SIGINT']) {
        process.on(sig, () => {
            stopping = true;
            for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
            process.exit(0);
        });
    }
} else {
    new logs(opts);
}
