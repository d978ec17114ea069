export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    try {
      return await env.MESH.fetch("http://10.0.1.50:3000" + url.pathname);
    } catch (err) {
      console.error(`handler failed: ${err}`);
      return new Response(String(err), { status: 500 });
    }
  },
};
