// The lab's model of a Workers VPC binding to Cloudflare Mesh (a `vpc_networks` entry with
// network_id "cf1:network"): a workerd wrapped binding, so `env.MESH` is an object with
// fetch() and connect() like the real one.
//
// fetch(): the request goes to the lab's Mesh edge (meshpath.lab.meshedge, the inner
// binding `edge`), which opens the TCP connection through the WARP tunnel from the Worker
// source address. When Mesh cannot deliver it, the edge answers with the header
// x-mesh-error and fetch() throws `Error: <that message>` (e.g. "handshake timeout"),
// which is what the Worker's code sees on Cloudflare.
//
// connect(): a raw TCP socket through workerd's network service (inner binding
// `network`, private addresses allowed); its `opened` promise rejects after the same
// handshake timeout when no SYN-ACK comes back.
const TARGET = "x-mesh-target";
const ERROR = "x-mesh-error";

class MeshBinding {
  #edge;
  #network;
  #timeoutMs;

  constructor(env) {
    this.#edge = env.edge;
    this.#network = env.network;
    this.#timeoutMs = env.handshakeTimeoutMs;
  }

  async fetch(input, init) {
    const request = new Request(input, init);
    const headers = new Headers(request.headers);
    headers.set(TARGET, request.url);
    const response = await this.#edge.fetch("http://mesh-edge/", {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
    });
    const error = response.headers.get(ERROR);
    if (error !== null) {
      await response.body?.cancel();
      throw new Error(error);
    }
    return response;
  }

  connect(address, options) {
    const socket = this.#network.connect(address, options);
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("handshake timeout")), this.#timeoutMs);
    });
    const opened = Promise.race([socket.opened, timeout]).finally(() => clearTimeout(timer));
    opened.catch(() => socket.close());
    return new Proxy(socket, {
      get(target, prop) {
        if (prop === "opened") return opened;
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }
}

export default function makeBinding(env) {
  return new MeshBinding(env);
}
