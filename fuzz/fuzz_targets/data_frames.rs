//! The data port's decoding of one producer connection (preamble, hello, frames, events),
//! delivered in reads of fuzzed sizes. A panic, a hang or a large allocation is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte says how many of the following bytes are read sizes.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8).min(rest.len());
    let (sizes, bytes) = rest.split_at(n);
    let decoded = fjord::network::fuzzing::decode_inbound(bytes, sizes);
    assert!(decoded.events <= bytes.len(), "more events than bytes");
});
