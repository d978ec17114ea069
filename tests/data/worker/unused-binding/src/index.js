export default {
  async fetch(request, env) {
    // env.MESH.fetch("http://10.0.1.50:3000/") is the plan; not done yet
    return new Response("ok");
  },
};
