'use strict';
// The book's distributor.js (the registry) as the chapters before 12 write it: a node's
// host is its socket's remoteAddress, and it listens on every interface as the book's
// server.listen(port) does, so an IPv4 peer is "::ffff:127.0.0.1". test: the port from argv; loopback only.
const net = require('net');
var map = {};
function write(socket, packet) { socket.write(JSON.stringify(packet) + '¶'); }
function sendInfo(socket) {
    var packet = { uri: "/distributes", method: "GET", key: 0, params: [] };
    for (var n in map) packet.params.push(map[n].info);
    if (socket) write(socket, packet); else for (var n in map) write(map[n].socket, packet);
}
var merge = {};
const server = net.createServer((socket) => {
    sendInfo(socket);
    const onClose = () => { var key = socket.remoteAddress + ":" + socket.remotePort; delete map[key]; sendInfo(); };
    socket.on('error', onClose); socket.on('close', onClose);
    socket.on('data', (data) => {
        var key = socket.remoteAddress + ":" + socket.remotePort;
        var sz = merge[key] ? merge[key] + data.toString() : data.toString();
        var arr = sz.split('¶');
        for (var n in arr) {
            if (sz.charAt(sz.length - 1) != '¶' && n == arr.length - 1) { merge[key] = arr[n]; break; }
            else if (arr[n] == "") break;
            else {
                var json = JSON.parse(arr[n]);
                if (json.uri == "/distributes" && json.method == "POST") {
                    map[key] = { socket: socket, info: json.params };
                    map[key].info.host = socket.remoteAddress;
                    sendInfo();
                }
            }
        }
    });
});
// test: loopback only, as an IPv6 socket (the book's server.listen(port) binds ::, every
// interface): its IPv4 peers are "::ffff:127.0.0.1" all the same
server.listen(Number(process.argv[2]), '::ffff:127.0.0.1', () => console.log("distributor listening", JSON.stringify(server.address())));
