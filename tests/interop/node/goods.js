'use strict';
// A goods service after the book's microservice_goods.js + goods.js, with an
// in-memory table instead of MariaDB. Replies carry the key from params.key at
// the top level, as the book's business code does.
// usage: node goods.js <distributor port>

const { tcpServer, emit } = require('./server.js');

const rows = [];

function onRequest(socket, method, pathname, params, cb) {
    var response = {
        key: params.key,
        errorcode: 0,
        errormessage: "success"
    };
    switch (method) {
        case "POST":
            if (params.name == null) {
                response.errorcode = 1;
                response.errormessage = "Invalid Parameters";
            } else {
                rows.push({ id: rows.length + 1, name: params.name, price: params.price });
                response.results = { id: rows.length };
            }
            break;
        case "GET":
            response.results = rows;
            break;
        default:
            response.errorcode = 1;
            response.errormessage = "unsupported method";
    }
    process.nextTick(cb, socket, response);
}

class goods extends tcpServer {
    constructor(distributorPort) {
        super("goods", 0, ["POST/goods", "GET/goods"]);
        this.listening.then(() => {
            this.connectToDistributor("127.0.0.1", distributorPort, (data) => {
                emit('noti', data);
            });
        });
    }

    onRead(socket, data) {
        emit('request', data);
        onRequest(socket, data.method, data.uri, data.params, (s, packet) => {
            socket.write(JSON.stringify(packet) + '¶');
        });
    }
}

new goods(Number(process.argv[2]));
