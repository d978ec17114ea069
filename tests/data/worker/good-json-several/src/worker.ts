import { helper } from "./lib/db";
interface Env { MESH: Fetcher; STAGING: Fetcher; TUNNEL: Fetcher; API: Fetcher }
export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const a = await env.MESH.fetch("http://10.0.1.50:3000/");
    const b = await env["STAGING"].fetch("http://10.0.1.50:3000/");
    const { TUNNEL } = env;
    const c = await TUNNEL.fetch("http://db.internal/");
    const public_ = await fetch("https://example.com/");
    return helper(env, a, b, c, public_);
  },
};
