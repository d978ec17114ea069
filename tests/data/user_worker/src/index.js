import { callPrivate } from "./upstream.js";

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    const binding = url.pathname.startsWith("/backup") ? env.BACKUP_NET : env.PRIVATE_NET;
    try {
      const res = await callPrivate(binding, `${env.ORDERS_URL}${url.pathname}`);
      return new Response(await res.text(), { status: res.status });
    } catch (err) {
      console.error(`orders-api: ${url.pathname} failed: ${err}`);
      return new Response(`upstream error: ${err}`, { status: 500 });
    }
  },
};
