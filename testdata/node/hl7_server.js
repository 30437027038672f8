// Runs the npm package node-hl7-server as an MLLP receiver that answers
// every message AA, and prints "listening PORT" once bound.
//
// node-hl7-server 2.5.0 keeps the first message of a connection in its
// buffer, so every later ACK on that connection carries the first
// message's MSH-10 in MSA-2: a real receiver whose ACKs go out of step.
//
// Usage: node hl7_server.js
const { Server } = require("node-hl7-server");

const server = new Server({ bindAddress: "127.0.0.1" });
const inbound = server.createInbound({ port: 0 }, async (req, res) => {
  await res.sendResponse("AA");
});
inbound.on("listen", () => {
  console.log("listening " + inbound._socket.address().port);
});
