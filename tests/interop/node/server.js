'use strict';
// The book's tcpServer (server.js) with chapter 12's log shipping (writeLog,
// connectToLog). Changes for tests, each marked "test:": listen on any port and
// register the real one; connect to the distributor at once (the book waits for
// its first 3 s tick); diagnostics go to stderr and test events to stdout.

const net = require('net');
const tcpClient = require('./client.js');

function emit(event, data) { // test: one JSON line per event on stdout
    process.stdout.write(JSON.stringify({ event: event, data: data }) + '\n');
}

class tcpServer {
    constructor(name, port, urls) {
        this.logTcpClient = null;
        this.context = {
            port: port,
            name: name,
            urls: urls
        };
        this.merge = {};

        this.server = net.createServer((socket) => {
            this.onCreate(socket);

            socket.on('error', (exception) => {
                this.onClose(socket);
            });

            socket.on('close', () => {
                this.onClose(socket);
            });

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
        });

        this.server.on('error', (err) => {
            console.error(err);
        });

        this.listening = new Promise((resolve) => {
            this.server.listen(port, '127.0.0.1', () => {
                this.context.port = this.server.address().port; // test: port 0 -> the real one
                emit('listening', { port: this.context.port });
                resolve();
            });
        });
    }

    onCreate(socket) {
        console.error("onCreate", socket.remoteAddress, socket.remotePort);
    }

    onClose(socket) {
        console.error("onClose", socket.remoteAddress, socket.remotePort);
    }

    connectToDistributor(host, port, onNoti) {
        var packet = {
            uri: "/distributes",
            method: "POST",
            key: 0,
            params: this.context
        };
        var isConnectedDistributor = false;

        this.clientDistributor = new tcpClient(
            host
            , port
            , (options) => {
                isConnectedDistributor = true;
                this.clientDistributor.write(packet);
            }
            , (options, data) => {
                if (this.logTcpClient == null && this.context.name != 'logs') {
                    for (var n in data.params) {
                        const ms = data.params[n];
                        if (ms.name == 'logs') {
                            this.connectToLog(ms.host, ms.port);
                            break;
                        }
                    }
                }
                onNoti(data);
            }
            , (options) => { isConnectedDistributor = false; }
            , (options) => { isConnectedDistributor = false; }
        );

        this.clientDistributor.connect(); // test: at once, not on the first 3 s tick
        setInterval(() => {
            if (isConnectedDistributor != true) {
                this.clientDistributor.connect();
            }
        }, 3000);
    }

    connectToLog(host, port) {
        this.logTcpClient = new tcpClient(
            host
            , port
            , (options) => { }
            , (options) => { this.logTcpClient = null; }
            , (options) => { this.logTcpClient = null; }
        );
        this.logTcpClient.connect();
    }

    writeLog(log) {
        if (this.logTcpClient) {
            const packet = {
                uri: "/logs",
                method: "POST",
                key: 0,
                params: log
            };
            this.logTcpClient.write(packet);
        } else {
            console.error(log);
        }
    }
}

module.exports = { tcpServer, emit };
