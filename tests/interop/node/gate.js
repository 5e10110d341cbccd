'use strict';
// The book's gateway (gate.js): HTTP -> the node whose urls hold METHOD/path,
// round robin; its counter goes into params.key and the reply is matched by the
// top-level key. Changes for tests: any HTTP port (printed, and registered),
// the distributor port from argv, an immediate first connect.
// usage: node gate.js <distributor port>

const http = require('http');
const url = require('url');
const querystring = require('querystring');
const tcpClient = require('./client.js');

function emit(event, data) {
    process.stdout.write(JSON.stringify({ event: event, data: data }) + '\n');
}

var mapClients = {};
var mapUrls = {};
var mapResponse = {};
var mapRR = {};
var index = 0;
const distributorPort = Number(process.argv[2]);

var server = http.createServer((req, res) => {
    var method = req.method;
    var uri = url.parse(req.url, true);
    var pathname = uri.pathname;

    if (method == "POST" || method == "PUT") {
        var body = "";
        req.on('data', function (data) {
            body += data;
        });
        req.on('end', function () {
            var params;
            if (req.headers['content-type'] == "application/json") {
                params = JSON.parse(body);
            } else {
                params = querystring.parse(body);
            }
            onRequest(res, method, pathname, params);
        });
    } else {
        onRequest(res, method, pathname, uri.query);
    }
}).listen(0, '127.0.0.1', () => {
    const port = server.address().port;
    emit('listening', { port: port });

    var packet = {
        uri: "/distributes",
        method: "POST",
        key: 0,
        params: {
            port: port,
            name: "gate",
            urls: []
        }
    };
    var isConnectedDistributor = false;

    this.clientDistributor = new tcpClient(
        "127.0.0.1"
        , distributorPort
        , (options) => {
            isConnectedDistributor = true;
            this.clientDistributor.write(packet);
        }
        , (options, data) => { onDistribute(data); }
        , (options) => { isConnectedDistributor = false; }
        , (options) => { isConnectedDistributor = false; }
    );

    this.clientDistributor.connect();
    setInterval(() => {
        if (isConnectedDistributor != true) {
            this.clientDistributor.connect();
        }
    }, 3000);
});

function onRequest(res, method, pathname, params) {
    var key = method + pathname;
    var client = mapUrls[key];
    if (client == null) {
        res.writeHead(404);
        res.end();
        return;
    } else {
        params.key = index;
        var packet = {
            uri: pathname,
            method: method,
            params: params
        };

        mapResponse[index] = res;
        index++;
        if (mapRR[key] == null)
            mapRR[key] = 0;
        mapRR[key]++;
        client[mapRR[key] % client.length].write(packet);
    }
}

function onDistribute(data) {
    emit('noti', data);
    for (var n in data.params) {
        var node = data.params[n];
        var key = node.host + ":" + node.port;
        if (mapClients[key] == null && node.name != "gate") {
            var client = new tcpClient(node.host, node.port, onCreateClient, onReadClient, onEndClient, onErrorClient);

            mapClients[key] = {
                client: client,
                info: node
            };

            for (var m in node.urls) {
                var key = node.urls[m];
                if (mapUrls[key] == null) {
                    mapUrls[key] = [];
                }
                mapUrls[key].push(client);
            }
            client.connect();
        }
    }
}

function onCreateClient(options) {
    emit('connected', options);
}

function onReadClient(options, packet) {
    emit('reply', packet);
    mapResponse[packet.key].writeHead(200, { 'Content-Type': 'application/json' });
    mapResponse[packet.key].end(JSON.stringify(packet));
    delete mapResponse[packet.key];
}

function onEndClient(options) {
    var key = options.host + ":" + options.port;
    console.error("onEndClient", mapClients[key]);
    for (var n in mapClients[key].info.urls) {
        var node = mapClients[key].info.urls[n];
        delete mapUrls[node];
    }
    delete mapClients[key];
}

function onErrorClient(options) {
    console.error("onErrorClient");
}
