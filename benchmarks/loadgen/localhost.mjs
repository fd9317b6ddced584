// Preload (`node --import ./localhost.mjs server.js`) that binds every `server.listen(port)`
// without a host to 127.0.0.1, so the reference server, whose Express app listens on all
// interfaces, is reachable from this machine only.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const [first, second] = args;
  if ((typeof first === "number" || typeof first === "string") && typeof second !== "string") {
    args.splice(1, 0, "127.0.0.1");
  }
  return listen.apply(this, args);
};
