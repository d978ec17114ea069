// The lab's Worker, written like the field report's: /health answers without touching
// Mesh; every other path is fetched from the private service through the Mesh binding.
// A failure is logged the way `wrangler tail` shows it and answered with a 500 whose body
// is the error's message. Paths under /v6/ go to the service's IPv6 address instead.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") {
      return new Response("ok");
    }
    const v6 = url.pathname.startsWith("/v6/");
    const origin = v6 ? "http://[fd00:1::50]:3000" : "http://10.0.1.50:3000";
    const path = v6 ? url.pathname.slice(3) : url.pathname;
    try {
      return await env.MESH.fetch(`${origin}${path}${url.search}`);
    } catch (err) {
      console.error(`handler failed: ${err}`);
      return new Response(err.message, { status: 500 });
    }
  },
};
