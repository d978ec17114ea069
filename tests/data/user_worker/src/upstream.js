// The binding is handed in, as real code often does.
export async function callPrivate(binding, url) {
  return binding.fetch(url, { headers: { "x-caller": "orders-api" } });
}
