'use strict';
// The chapter's logs service (logs.js with its log.txt), on the book's tcpServer
// (server.js). Changes for tests, each marked "test:": no cluster (one process
// the test can stop), any port (registered), the distributor port and the log
// file from argv, the printed line on stderr (stdout carries test events).
// usage: node logs.js <distributor port> <log file>

const fs = require('fs');
const { tcpServer, emit } = require('./server.js');

class logs extends tcpServer {
    constructor(distributorPort, output) {
        super("logs", 0, ["POST/logs"]); // test: port 0 (the book: 9040)
        this.writestream = fs.createWriteStream(output, { flags: 'a' });
        this.listening.then(() => {
            this.connectToDistributor("127.0.0.1", distributorPort, (data) => {
                emit('noti', data);
            });
        });
    }

    onRead(socket, data) {
        const sz = new Date().toLocaleDateString() + '\t' + socket.remoteAddress + '\t' + socket.remotePort + '\t' + JSON.stringify(data) + '\n';
        console.error(sz); // test: stderr (the book: console.log)
        this.writestream.write(sz);
    }
}

new logs(Number(process.argv[2]), process.argv[3]); // test: no cluster
