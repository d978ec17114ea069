import { callService } from "./client.js";
export default {
  async fetch(request, env) {
    return callService(env.MESH, "/users");
  },
};
