import { connect } from "cloudflare:sockets";
const SERVICE = "http://10.0.1.50:3000";
export default {
  async fetch(request, env) {
    const a = await fetch("http://10.0.1.50:3000/users");
    const b = await fetch(`${SERVICE}/orders`);
    const sock = connect({ hostname: "192.168.1.20", port: 6379 });
    const ok = await fetch("https://api.example.com/");
    return new Response("x");
  },
};
