// HTTP on a TAP device against the real Linux kernel (needs root and the TAP addon): our stack
// serves Node's http on 192.0.2.2; curl runs in the new network namespace, on the kernel's
// stack, and fetches a page and a 1 MiB body. Run as root: node dist/examples/http-live.js
import * as http from "node:http";
import { LIVE_ADDRS, startLiveHost } from "chimney/live";

const host = startLiveHost({ seed: 1 }); // creates the namespace and the TAP device
try {
  const web = http.createServer((req, res) => {
    const n = req.url === "/big" ? 1 << 20 : 0;
    res.end(n > 0 ? Buffer.alloc(n, "x") : `hello from our stack, you are ${req.socket.remoteAddress}\n`);
  });
  const server = host.net.createServer((socket) => web.emit("connection", socket));
  await new Promise<void>((resolve) => server.listen(80, resolve));

  // Asynchronous: our stack runs in this event loop, which must keep turning while curl waits.
  const url = `http://${LIVE_ADDRS.ours4}`;
  process.stdout.write(await host.netns.exec("curl", ["-sS", "--max-time", "20", `${url}/`]));
  const size = await host.netns.exec("curl", [
    "-sS",
    "--max-time",
    "20",
    "-o",
    "/dev/null",
    "-w",
    "%{size_download}",
    `${url}/big`,
  ]);
  console.log(`curl downloaded ${size} bytes from /big`);
} finally {
  host.close(); // removes the namespace and the device
}
