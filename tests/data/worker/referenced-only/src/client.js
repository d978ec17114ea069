export function callService(binding, path) {
  return binding.fetch("http://10.0.1.50:3000" + path);
}
