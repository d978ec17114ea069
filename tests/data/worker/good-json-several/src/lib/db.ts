export async function helper(env: any, ...rest: unknown[]) {
  const socket = env.API.fetch("http://internal-api/users");
  return socket;
}
