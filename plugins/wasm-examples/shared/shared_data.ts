// Shared data helpers of the AssemblyScript filters (the examples here and the test
// filters of tests/wasm_filters/), imported by a relative path; build.sh rebuilds a
// filter when this folder changes too.
import * as imports from "@solo-io/proxy-runtime/imports";

// Adds one to the u64 under `key` in shared data with compare-and-swap (retried 32
// times when another instance wrote in between), so every instance and every reload
// counts into the same number; returns the new count, or 0 when it never got through.
export function bump(key: string): u64 {
  const k = String.UTF8.encode(key);
  const slots = new ArrayBuffer(12);
  const s = changetype<usize>(slots);
  const val = new ArrayBuffer(8);
  for (let i = 0; i < 32; i++) {
    let count: u64 = 0;
    let cas: u32 = 0;
    if (imports.proxy_get_shared_data(changetype<usize>(k), k.byteLength, s, s + 4, s + 8) == 0) {
      if (load<u32>(s + 4) == 8) count = load<u64>(load<u32>(s));
      cas = load<u32>(s + 8);
    }
    count += 1;
    store<u64>(changetype<usize>(val), count);
    if (imports.proxy_set_shared_data(changetype<usize>(k), k.byteLength, changetype<usize>(val), 8, cas) == 0) {
      return count;
    }
  }
  return 0;
}
