// A test Worker: calls what the query names through the Mesh binding (or the global
// fetch) and answers with what it got, or 500 and the thrown error, logged like wrangler.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const target = url.searchParams.get("to");
    try {
      if (url.pathname === "/fetch") {
        const res = await env.MESH.fetch(target);
        return new Response(await res.text(), { status: res.status });
      }
      if (url.pathname === "/global") {
        const res = await fetch(target);
        return new Response(await res.text(), { status: res.status });
      }
      if (url.pathname === "/connect") {
        const socket = env.MESH.connect(target);
        await socket.opened;
        await socket.close();
        return new Response("opened");
      }
    } catch (err) {
      console.error(`handler failed: ${err}`);
      return new Response(String(err), { status: 500 });
    }
    return new Response("not found", { status: 404 });
  },
};
