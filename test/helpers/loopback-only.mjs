// Loaded into every test worker (vitest setupFiles) and every child process a test starts
// (--import): a TCP or TLS connection to any host but the loopback fakes fails at once, so a check
// that breaks cannot send a request to a real API or download from the real MIND URL. Plain
// JavaScript, so a child can load it without tsx: bin/genre-mind.js is tested as a user starts it.
import net from "node:net";

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/** @param {unknown[]} args @returns {string | undefined} */
function hostOf(args) {
  const [first, second] = args;
  if (Array.isArray(first)) return hostOf(first);
  if (typeof first === "object" && first !== null) {
    const o = /** @type {{ host?: string; path?: string }} */ (first);
    return o.path !== undefined ? undefined : (o.host ?? "localhost");
  }
  if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) return typeof second === "string" ? second : "localhost";
  return undefined; // an IPC path
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const host = hostOf(args);
  if (host !== undefined && !LOOPBACK.has(host)) {
    process.nextTick(() => this.destroy(new Error(`tests reach 127.0.0.1 only: refused a connection to ${host}`)));
    return this;
  }
  return connect.apply(this, args);
};
