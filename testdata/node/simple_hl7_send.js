// Sends HL7 files over MLLP with the npm package simple-hl7's TcpClient,
// one message per file (LF and CRLF made CR), on one kept-alive
// connection, and prints "MSA-1<TAB>MSA-2" for each ACK.
//
// Usage: node simple_hl7_send.js HOST PORT FILE...
const fs = require("fs");
const hl7 = require("simple-hl7");

const [host, port, ...files] = process.argv.slice(2);
const client = hl7.Server.createTcpClient({ host, port: Number(port), keepalive: true });

function sendNext(i) {
  if (i >= files.length) {
    client.close();
    return;
  }
  const text = fs.readFileSync(files[i], "utf8").replace(/\r\n|\n/g, "\r");
  client.send(text, (err, ack) => {
    if (err) {
      console.error("send failed:", err.message);
      process.exit(1);
    }
    const msa = ack.getSegment("MSA");
    console.log(msa.getField(1) + "\t" + msa.getField(2));
    // simple-hl7 calls back before it clears its "awaiting response" flag:
    // send the next message on the next tick.
    setImmediate(() => sendNext(i + 1));
  });
}
sendNext(0);
